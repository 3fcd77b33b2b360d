"""Generated protobuf and gRPC stubs of grpc/ (scripts/gen_protos; do not edit)."""
