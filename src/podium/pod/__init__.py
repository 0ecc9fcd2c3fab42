"""The pod: the data owner's runtime (being built): its database and its local policy."""
