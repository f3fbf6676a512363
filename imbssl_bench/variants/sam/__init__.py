"""The rwSAM room: sharpness-aware steps (`sam`), density weights (`density`) and the
``rwsam`` variant with its controls (`rwsam`)."""
