"""Model backends: they answer requests. Hugging Face transformers is the default; vLLM is optional."""
