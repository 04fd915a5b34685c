"""What the Python peers share: the seed's `isprime` and the figure format the harness reads."""

import math


def isprime(n):
    """The seed's isprime (its pp example): True if n is prime, by trial division up to ceil(sqrt(n))."""
    if n < 2:
        return False
    if n == 2:
        return True
    limit = int(math.ceil(math.sqrt(n)))
    i = 2
    while i <= limit:
        if n % i == 0:
            return False
        i += 1
    return True


def emit(metric, value, unit):
    """One figure, as `Benchmarks/Peers/run` reads them: metric<TAB>value<TAB>unit."""
    print("%s\t%.6g\t%s" % (metric, value, unit), flush=True)
