"""Python stubs of the V2 / Open Inference Protocol gRPC service (`inference.GRPCInferenceService`).

`open_inference.proto` is our own transcription of the public specification; `open_inference_pb2*.py(i)` are
generated from it with grpcio-tools (the command is in the .proto header) and are not edited by hand. They import
protobuf and grpc at module level, so import them only where a gRPC call is made.
"""
