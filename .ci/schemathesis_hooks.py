"""Schemathesis hooks for .ci/fuzz.sh (SCHEMATHESIS_HOOKS): tus bodies are bytes of the media type
application/offset+octet-stream, which schemathesis sends as it sends application/octet-stream."""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
