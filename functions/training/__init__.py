"""Entry points of the SageMaker retraining pipeline's steps (infra/pipeline.py).

Each script parses the paths SageMaker gives it and calls one function of
fidelio.pipeline_steps, so the steps run the same way in a container, in tests and locally.
They need the training libraries (lightgbm, onnxmltools, pyarrow): never imported by a handler.
"""
