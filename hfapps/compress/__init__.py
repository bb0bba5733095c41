"""`hfapps export`: a model made smaller and faster for a runtime (ONNX Runtime, CTranslate2), checked to load and
run its task, measured against its source, and described in a model card. The runtimes themselves (conversion,
int8, loading an export) are `hfapps.runtimes`; distillation, the other compression, is a training recipe."""
