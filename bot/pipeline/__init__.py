"""The outbound pipeline's own room: the parts that decide what happens to a message and when."""
