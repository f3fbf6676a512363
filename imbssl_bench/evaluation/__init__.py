"""The evaluation room: a frozen backbone's features (`features`) of the balanced pool and the
test split go through the probes (`probes`) into the metrics (`metrics`); `protocol.evaluate`
runs the whole of it."""
