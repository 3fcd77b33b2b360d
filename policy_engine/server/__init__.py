"""The gRPC side of policy-engine: wire conversions, the Envoy mapping, servicers."""
