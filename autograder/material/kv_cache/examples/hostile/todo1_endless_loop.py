# Loops forever in TODO 1, which every other TODO's checks call too.
while True:
    pass
