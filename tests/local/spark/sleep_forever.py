"""A driver that never finishes (for deletion tests): prints a marker, then sleeps."""

import time

print("sleeping driver up", flush=True)
while True:
    time.sleep(1)
