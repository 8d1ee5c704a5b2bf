"""Intent recognition: transcript -> intent, calibrated confidence, slots, local/cloud routing.

Serving needs numpy, tokenizers and onnxruntime only (:mod:`.model`); training needs the
``train`` extra (jax) and optionally the MiniLM teacher (:mod:`.train`, :mod:`.teacher`).
The shared interface lives in :mod:`.types`.
"""
