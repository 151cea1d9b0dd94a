"""The check character: one extra character that catches every single-character typo and every swap of two
adjacent characters, without a database lookup.

The scheme is Verhoeff's, generalised from the ten digits to an alphabet of any size n ≥ 3 that is not a
multiple of 8. The characters are numbered 0 … n-1 (their order in the alphabet) and read as the elements
of a group G of order n that has an *antisymmetric* permutation f: ``x·f(y) ≠ y·f(x)`` whenever ``x ≠ y``.
Characters ``a_0 … a_(k-1)`` followed by their check character ``c`` are valid when

    f^0(a_0) · f^1(a_1) · … · f^(k-1)(a_(k-1)) · f^k(c) = e    (the identity of G)

and ``c`` is the one character that makes it so. Why every error is caught:

- a substitution ``a → b`` at position i changes one factor from f^i(a) to f^i(b), a different element
  (f is a permutation), and changing one factor of a product in a group changes the product;
- swapping adjacent ``x ≠ y`` at positions i and i+1 changes f^i(x)·f^(i+1)(y) into f^i(y)·f^(i+1)(x);
  with ``u = f^i(x) ≠ v = f^i(y)`` that is ``u·f(v)`` against ``v·f(u)``, unequal by antisymmetry.

The group and f depend on n (each f is proven antisymmetric beside its code below):

- n odd (the default unambiguous set, 31): the integers mod n, f(x) = 2x — a weighted sum mod n with the
  weights 1, 2, 4, 8, …;
- n = 2m with m odd (digits, 10; letters, 26): the dihedral group D_m of rotations r^i and reflections
  s·r^i, with f(r^i) = r^(-i) and f(s·r^i) = s·r^(i+1);
- n = 4m with m odd (alphanumeric, 36): Z2 x Z2 x Z_m, f(a, b, x) = (b, a⊕b, 2x).

No weighted sum mod an even n catches every adjacent swap (to catch substitutions every weight must be odd,
and the difference of two odd weights is even, so some swap goes unnoticed): hence the other groups.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

Op = Callable[[int, int], int]
Perm = Callable[[int], int]


def _cyclic(n: int) -> tuple[Op, Perm]:
    # x + 2y = y + 2x only when x = y.
    return (lambda x, y: (x + y) % n), (lambda x: 2 * x % n)


def _dihedral(m: int) -> tuple[Op, Perm]:
    # Element e < m is the rotation r^e; e = m + i is the reflection s·r^i. With m odd, x·f(y) = y·f(x)
    # forces x = y: two rotations give r^(i-j) = r^(j-i), so 2(i-j) ≡ 0 and i = j; a rotation r^i and a
    # reflection s·r^j give s·r^(j-i+1) against s·r^(j-i), never equal; two reflections s·r^i, s·r^j give
    # r^(j-i+1) = r^(i-j+1), so 2(i-j) ≡ 0 and i = j.
    def op(x: int, y: int) -> int:
        (fx, ix), (fy, iy) = divmod(x, m), divmod(y, m)
        return ((fx + fy) % 2) * m + ((-ix if fy else ix) + iy) % m  # r^i·s = s·r^(-i)

    def sigma(x: int) -> int:
        flip, i = divmod(x, m)
        return m + (i + 1) % m if flip else -i % m

    return op, sigma


def _klein_times_cyclic(m: int) -> tuple[Op, Perm]:
    # Element e = q·m + x stands for (a, b, x) with q = 2a + b. The group is abelian, so f is antisymmetric
    # when z ↦ f(z) - z is one-to-one: it maps (a, b, x) to (a⊕b, a, x), from which a, b and x come back.
    def op(x: int, y: int) -> int:
        (qx, ix), (qy, iy) = divmod(x, m), divmod(y, m)
        return (qx ^ qy) * m + (ix + iy) % m

    def sigma(x: int) -> int:
        q, i = divmod(x, m)
        a, b = divmod(q, 2)
        return (2 * b + (a ^ b)) * m + 2 * i % m

    return op, sigma


def _group(n: int) -> tuple[Op, Perm]:
    if n >= 3 and n % 2:
        return _cyclic(n)
    if n >= 6 and n % 4 == 2:
        return _dihedral(n // 2)
    if n >= 4 and n % 8 == 4:
        return _klein_times_cyclic(n // 4)
    raise ValueError(f"no check character scheme for an alphabet of {n} characters")


class CheckScheme:
    """The check character over one alphabet; tables are built once, so checking costs a lookup per
    character."""

    def __init__(self, alphabet: str) -> None:
        n = len(alphabet)
        if len(set(alphabet)) != n:
            raise ValueError("alphabet characters must be distinct")
        op, sigma = _group(n)
        self.alphabet = alphabet
        self._index = {char: i for i, char in enumerate(alphabet)}
        powers = [list(range(n))]
        while True:  # f^0, f^1, … until f comes back to the identity; positions repeat with this period
            following = [sigma(x) for x in powers[-1]]
            if following == powers[0]:
                break
            powers.append(following)
        self._period = len(powers)
        identity = 0
        inverse = [next(y for y in range(n) if op(x, y) == identity) for x in range(n)]
        # step[p][s][char]: the product so far, s, times f^p(char); one dict lookup per character.
        self._step = [
            [{char: op(s, power[i]) for i, char in enumerate(alphabet)} for s in range(n)] for power in powers
        ]
        # finish[p][s]: the character c with s·f^p(c) = e.
        self._finish = [[alphabet[power.index(inverse[s])] for s in range(n)] for power in powers]

    def _product(self, chars: str) -> int:
        step, period = self._step, self._period
        state = 0
        for position, char in enumerate(chars):
            state = step[position % period][state][char]
        return state

    def check_character(self, chars: str) -> str:
        """The character to append to ``chars`` (all from the alphabet)."""
        return self._finish[len(chars) % self._period][self._product(chars)]

    def is_valid(self, chars: str) -> bool:
        """True when ``chars`` ends with the right check character (False for characters outside the
        alphabet)."""
        if not chars or any(char not in self._index for char in chars):
            return False
        return self._product(chars) == 0

    def check_characters(self, chars: str, width: int) -> str:
        """The check character of each ``width``-long slice of ``chars``, in order (bulk generation)."""
        step, finish, period = self._step, self._finish[width % self._period], self._period
        out = []
        columns = [(step[p % period], p) for p in range(width)]
        for start in range(0, len(chars), width):
            state = 0
            for table, offset in columns:
                state = table[state][chars[start + offset]]
            out.append(finish[state])
        return "".join(out)


@cache
def scheme_for(alphabet: str) -> CheckScheme:
    return CheckScheme(alphabet)
