#!/usr/bin/env python3
"""The shape of a MovieLens ratings.csv, to set a generated set (psrec synth) beside a real one.

Usage: bench/ratings_shape.py DIR [DIR...]   (each DIR holding ratings.csv)

Prints, per directory: ratings, users and rated movies; ratings per user (min, median, mean,
max); the share of all ratings held by the top 1% and 10% of rated movies; the share of rated
movies with a single rating; the rating histogram, mean and share of half stars.
"""
import collections
import sys


def shape(directory):
    per_user = collections.Counter()
    per_movie = collections.Counter()
    histogram = collections.Counter()
    with open(f"{directory}/ratings.csv") as f:
        next(f)
        for line in f:
            user, movie, rating, _ = line.split(",")
            per_user[user] += 1
            per_movie[movie] += 1
            histogram[float(rating)] += 1
    n = sum(per_user.values())
    users = sorted(per_user.values())
    movies = sorted(per_movie.values(), reverse=True)
    top = lambda fraction: sum(movies[: max(1, int(len(movies) * fraction))]) / n
    print(f"{directory}: {n} ratings, {len(users)} users, {len(movies)} rated movies")
    print(f"  per user: min {users[0]}, median {users[len(users) // 2]}, "
          f"mean {n / len(users):.1f}, max {users[-1]}")
    print(f"  top 1% of rated movies hold {top(0.01):.3f} of ratings, top 10% {top(0.10):.3f}; "
          f"{sum(1 for c in movies if c == 1) / len(movies):.3f} of movies have one rating")
    print("  histogram: " + " ".join(f"{r:g}:{histogram[r] / n:.3f}" for r in sorted(histogram)))
    mean = sum(r * c for r, c in histogram.items()) / n
    half = sum(c for r, c in histogram.items() if r != int(r)) / n
    print(f"  mean {mean:.3f}, half stars {half:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for d in sys.argv[1:]:
        shape(d)
