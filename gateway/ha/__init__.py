"""High availability on PostgreSQL: a lease per shard, fencing, and a hot standby."""
