"""Models outside PyTorch: ONNX files checked against PyTorch with ONNX Runtime."""
