# Leaves in the middle of TODO 3, politely.
import sys
sys.exit(0)
