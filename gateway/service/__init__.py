"""The only layer that sees protobuf: validate requests, convert to and from the domain."""
