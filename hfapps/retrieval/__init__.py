"""Retrieval: embeddings into a vector index over your documents (Milvus Lite in a folder, or a Milvus server by
URL), hybrid search, reranking, and answers from your documents."""
