"""moto server, corrected toward AWS in one place the tests depend on.

moto's ReplicateKey copies the primary key object shallowly, so the primary and all its
replicas share one grants dictionary and one aliases dictionary: a grant created on one replica
shows on every other key of the set, and an alias made in one Region is listed in all. In AWS,
multi-Region keys share key material, not grants or aliases
(https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html), so
each replica starts with none of its own here too.
"""

import sys

from moto.kms.models import KmsBackend

_replicate_key = KmsBackend.replicate_key


def replicate_key(self, key_id, replica_region):
    replica = _replicate_key(self, key_id, replica_region)
    replica.grants = {}
    replica.aliases = {}
    return replica


KmsBackend.replicate_key = replicate_key

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
