# Loops forever in TODO 4 (a busy loop: no sleep, no I/O).
n = 0
while True:
    n += 1
