"""The machinery behind every helper's speed and input rules, shared by the task modules: devices and dtypes,
length-sorted batching, input checks, long inputs, packed CPU weights, prompting a chat model, language codes."""
