"""The shared machinery every stage runs on: consume, handle, publish atomically,
route failures to retries or dead letters."""
