"""LLM access for ai_query: endpoints, cache, limiter, structured output, the local backend."""
