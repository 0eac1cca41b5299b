"""The model edge: the only package that imports TensorFlow or PixelLib (``segmenter``,
``tinynet``, through ``tfenv``). ``Detector`` is its face; cards, weights verification and
downloads live here too."""
