# Kills its own process in the middle of TODO 4.
import os
os._exit(0)
