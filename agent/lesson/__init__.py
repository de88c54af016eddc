"""Live lessons (专递课堂 / 双师): the leading and the joined side, peers, media, pictures, presence, SFU, web."""
