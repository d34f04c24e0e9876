"""`seqgen serve`: an HTTP generation service (FastAPI on uvicorn) that batches concurrent
requests per model and speaks OpenAI's completions protocol. See docs/service.md."""
