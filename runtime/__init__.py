"""The runtime apps embed: numpy + pillow (+ onnxruntime for sampling). Never imports torch."""
