//! Reads a received message and says what the receiver decided about it.
