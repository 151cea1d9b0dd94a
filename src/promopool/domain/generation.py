"""Generated codes: what they look like (a ``CodeSpec``), how many a pool may hold (the key-space floor), and
making them fast from the operating system's CSPRNG."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction

from promopool.domain.checkchar import scheme_for
from promopool.domain.codes import MAX_CODE_LENGTH, has_control_characters
from promopool.domain.errors import InvalidInput, KeySpaceTooSmall

RANDOM = "#"  # in a pattern, a random character; every other character is kept as written
_SLOT = "\0"  # in a skeleton, where a random or check character goes
DEFAULT_CHARSET = "unambiguous"
DEFAULT_LENGTH = 12
MAX_COUNT = 100_000_000  # per request; a larger run is several requests

CHARSETS = {
    # No 0/O, 1/I/L: nothing a reader can mistake for another character of the set. 31 characters.
    "unambiguous": "23456789ABCDEFGHJKMNPQRSTUVWXYZ",
    "digits": "0123456789",
    "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alphanumeric": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
}


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """How generated codes look: ``prefix``, then ``pattern`` (``#`` = a random character of the charset,
    anything else literal), then ``suffix``; with ``check_character``, a check character (see
    ``domain/checkchar.py``) follows the last random character. Build one with ``CodeSpec.of``, which
    validates."""

    pattern: str
    charset: str = DEFAULT_CHARSET
    prefix: str = ""
    suffix: str = ""
    check_character: bool = False
    uppercase: bool = True

    @classmethod
    def of(
        cls,
        *,
        pattern: str | None = None,
        length: int | None = None,
        charset: str = DEFAULT_CHARSET,
        prefix: str = "",
        suffix: str = "",
        check_character: bool = False,
        uppercase: bool = True,
    ) -> CodeSpec:
        """A checked spec: give ``pattern`` or ``length`` (random characters only; default 12), not both."""
        if pattern is not None and length is not None:
            raise InvalidInput("give either pattern or length, not both", field="pattern")
        if charset not in CHARSETS:
            raise InvalidInput(f"charset must be one of: {', '.join(CHARSETS)}", field="charset")
        if pattern is None:
            length = DEFAULT_LENGTH if length is None else length
            if not 1 <= length <= MAX_CODE_LENGTH:
                raise InvalidInput(f"length must be between 1 and {MAX_CODE_LENGTH}", field="length")
            pattern = RANDOM * length
        elif RANDOM not in pattern:
            raise InvalidInput(f"pattern needs at least one {RANDOM!r} (a random character)", field="pattern")
        for name, text in (("pattern", pattern), ("prefix", prefix), ("suffix", suffix)):
            if has_control_characters(text):
                raise InvalidInput(f"{name} must not contain control characters", field=name)
        spec = cls(pattern, charset, prefix, suffix, check_character, uppercase)
        if len(spec.skeleton) > MAX_CODE_LENGTH:
            raise InvalidInput(
                f"codes would be {len(spec.skeleton)} characters long; at most {MAX_CODE_LENGTH} are allowed",
                field="pattern",
            )
        if spec.skeleton != spec.skeleton.strip():  # stored codes are stripped: no spaces at either end
            raise InvalidInput("codes must not start or end with whitespace", field="prefix")
        return spec

    @property
    def alphabet(self) -> str:
        chars = CHARSETS[self.charset]
        return chars if self.uppercase else chars.lower()

    @property
    def skeleton(self) -> str:
        """A code with NUL at each random position and at the check character's (no literal can hold a
        NUL: control characters are refused)."""
        body = self.pattern.replace(RANDOM, _SLOT)
        if self.check_character:
            last = body.rindex(_SLOT) + 1
            body = body[:last] + _SLOT + body[last:]
        return self.prefix + body + self.suffix

    @property
    def random_length(self) -> int:
        return self.pattern.count(RANDOM)

    @property
    def key_space(self) -> int:
        """How many different codes the spec can make (the check character adds none)."""
        return int(len(self.alphabet) ** self.random_length)  # int(): typeshed types int ** int as Any

    def matches(self, value: str) -> bool:
        """True when ``value`` has this spec's shape and, with ``check_character``, the right check
        character: a typo is caught without looking the code up."""
        skeleton, alphabet = self.skeleton, self.alphabet
        if len(value) != len(skeleton):
            return False
        drawn = []
        for char, expected in zip(value, skeleton, strict=True):
            if expected != _SLOT:
                if char != expected:
                    return False
            elif char in alphabet:
                drawn.append(char)
            else:
                return False
        return not self.check_character or scheme_for(alphabet).is_valid("".join(drawn))


def check_key_space(spec: CodeSpec, *, existing: int, count: int, max_fill: float) -> None:
    """Refuse ``count`` more codes when a pool already holding ``existing`` would then fill more than
    ``max_fill`` of the spec's key space: a random guess must hit a code with at most that probability.
    Exact arithmetic: ``max_fill`` is read as the decimal it was written as."""
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"count must be between 1 and {MAX_COUNT:,}", field="count")
    space = spec.key_space
    fill = Fraction(str(max_fill))
    most = int(space * fill)  # floor: the largest total keeping total/space <= max_fill
    total = existing + count
    if total <= most:
        return
    room = max(most - existing, 0)
    raise KeySpaceTooSmall(
        f"{count:,} more codes would make {total:,} in a key space of {space:,}"
        f" ({len(spec.alphabet)} characters ^ {spec.random_length} random positions): a random guess would"
        f" hit one with probability {float(Fraction(total, space)):.3g}, over the limit of {max_fill:g}."
        f" The pool holds {existing:,}; at most {room:,} more fit. Use a longer pattern or a larger charset.",
        field="count",
        count=count,
        existing=existing,
        key_space=space,
        max_fill=max_fill,
        max_count=room,
    )


def random_characters(alphabet: str, count: int) -> str:
    """``count`` characters drawn uniformly from ``alphabet`` (ASCII, at most 256 characters) by the OS's
    CSPRNG. Random bytes are mapped onto the alphabet in bulk by ``bytes.translate``; bytes at or above the
    largest multiple of the alphabet's size are dropped first, so every character is equally likely."""
    size = len(alphabet)
    keep = 256 - 256 % size
    table = bytes(ord(alphabet[byte % size]) for byte in range(256))
    dropped = bytes(range(keep, 256))
    out = bytearray()
    while len(out) < count:
        wanted = count - len(out)
        # A little extra for the dropped bytes (at most 8.6%, for 26 characters) saves a second round.
        out += secrets.token_bytes(wanted + wanted // 8 + 16).translate(table, dropped)
    del out[count:]
    return out.decode("ascii")


def generate(spec: CodeSpec, count: int) -> list[str]:
    """``count`` random codes of ``spec``, not checked for uniqueness (the database does that)."""
    alphabet, width = spec.alphabet, spec.random_length
    drawn = random_characters(alphabet, count * width)
    # All codes at once: the skeleton repeated ``count`` times, one per line, each random position filled
    # by one strided slice assignment — a C-level copy per position, not a Python step per code.
    line = (spec.skeleton + "\n").encode("utf-8")
    slots = [offset for offset, byte in enumerate(line) if byte == 0]  # UTF-8 never has a 0 byte otherwise
    stride = len(line)
    buffer = bytearray(line * count)
    source = drawn.encode("ascii")
    for column, offset in enumerate(slots[:width]):
        buffer[offset::stride] = source[column::width]
    if spec.check_character:
        buffer[slots[width] :: stride] = scheme_for(alphabet).check_characters(drawn, width).encode("ascii")
    codes = buffer.decode("utf-8").split("\n")
    codes.pop()  # the empty string after the last newline
    return codes
