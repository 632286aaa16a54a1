# store module sources (core/store)
