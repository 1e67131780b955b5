"""TFLite (LiteRT) export of keras_seqrnn models.

Empty until the export work lands: it will hold `to_tflite`, its presets and
the LiteRT runtime wrapper.
"""
