"""Per-architecture landmark trainers: backbones, data cache, augmentation, training, prediction.

Importing this package imports torch; the `ens` CLI loads it only inside the commands that train
or predict.
"""

import os

# Idle OpenMP threads sleep instead of spinning: on a machine whose cores are shared (CI, a
# laptop busy with other work) spinning made CPU training up to 20x slower. Set before torch
# starts its thread pool; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
