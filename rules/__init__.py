"""Pure decision rules: plain functions over plain data, the clock passed in, no I/O."""
