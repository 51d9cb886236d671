"""Photos in, batches out: discover and validate folders, split (near-duplicate clusters included), decode
into a cache, masks, backgrounds, transforms and epoch sampling. Knows no Lightning, hands or models."""
