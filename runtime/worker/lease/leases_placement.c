/*
 * Placement of partitions on workers by rendezvous (highest-random-weight) hashing: partition p
 * belongs to the member whose weight hash(member, p) is highest. Each member wins each partition
 * with the same probability (an even spread), and membership changes move only the partitions
 * the joining member wins or the leaving member owned.
 *
 * FROZEN (see leases_int.h): FNV-1a 64 of the ID, then the SplitMix64 finalizer of the ID hash
 * combined with the finalized partition number. Workers of one fleet must agree on it.
 */
#include <string.h>

#include "leases_int.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull
#define GOLDEN     0x9e3779b97f4a7c15ull

/* SplitMix64's finalizer: a bijection that spreads every input bit over the output. */
static uint64_t mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z;
}

uint64_t dt__leases_id_hash(const char *id)
{
    uint64_t h = FNV_OFFSET;
    for (const unsigned char *c = (const unsigned char *)id; *c != '\0'; c++) {
        h ^= *c;
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t dt__leases_weight(uint64_t id_hash, uint32_t p)
{
    return mix64(id_hash ^ mix64((uint64_t)p + GOLDEN));
}

size_t dt__leases_place(const char *const *ids, const uint64_t *id_hashes, size_t n, uint32_t p)
{
    size_t best = n;
    uint64_t best_w = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = id_hashes != NULL ? id_hashes[i] : dt__leases_id_hash(ids[i]);
        uint64_t w = dt__leases_weight(h, p);
        if (best == n || w > best_w || (w == best_w && strcmp(ids[i], ids[best]) < 0)) {
            best = i;
            best_w = w;
        }
    }
    return best;
}
