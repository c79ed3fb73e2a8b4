#!/usr/bin/env python3
"""Writes benchmark input: real Apache access lines repeated until a size is reached.

Each repetition of the sample gets its own client addresses (a fixed permutation of the
originals, different for every repetition) and is shifted forward in time by the span of
the sample, so the output reads like one long, plausible access log rather than the same
lines over and over: compressors and parsers see realistic, not trivially repetitive,
input.

    make_input.py --sample apache_logs --bytes 1073741824 --out input.log

Only whole lines are written; the output ends at the first line boundary at or after the
requested size. The number of lines is printed on standard output.
"""

import argparse
import calendar
import re
import sys
import time

LINE = re.compile(r"^(\S+)( .*? \[)(\d{2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})(\].*)$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH_NUMBER = {name: number for number, name in enumerate(MONTHS, start=1)}


def read_sample(path):
    """Splits each sample line into (address, middle, epoch seconds, zone, rest)."""
    entries = []
    kept_verbatim = 0
    with open(path, encoding="utf-8", errors="replace") as sample:
        for raw in sample:
            line = raw.rstrip("\n")
            if not line:
                continue
            found = LINE.match(line)
            if found is None:
                entries.append((None, line, 0, "", ""))
                kept_verbatim += 1
                continue
            address, middle, day, month, year, hour, minute, second, zone, rest = found.groups()
            epoch = calendar.timegm(
                (int(year), MONTH_NUMBER[month], int(day), int(hour), int(minute), int(second))
            )
            entries.append((address, middle, epoch, zone, rest))
    if kept_verbatim:
        print(f"{kept_verbatim} sample lines kept verbatim (not access lines)", file=sys.stderr)
    return entries


def address_for(original, repetition):
    """A stable, valid-looking IPv4 address derived from the original and the repetition."""
    parts = original.split(".")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return original
    value = 0
    for part in parts:
        value = (value << 8) | (int(part) & 0xFF)
    mixed = (value * 2654435761 + repetition * 0x9E3779B1) & 0xFFFFFFFF
    first = 1 + (mixed >> 24) % 223
    return f"{first}.{(mixed >> 16) & 0xFF}.{(mixed >> 8) & 0xFF}.{1 + (mixed & 0xFF) % 254}"


def format_time(epoch):
    moment = time.gmtime(epoch)
    return "%02d/%s/%d:%02d:%02d:%02d" % (
        moment.tm_mday,
        MONTHS[moment.tm_mon - 1],
        moment.tm_year,
        moment.tm_hour,
        moment.tm_min,
        moment.tm_sec,
    )


def main():
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--sample", required=True)
    arguments.add_argument("--bytes", type=int, required=True)
    arguments.add_argument("--out", required=True)
    options = arguments.parse_args()

    entries = read_sample(options.sample)
    epochs = [epoch for address, _, epoch, _, _ in entries if address is not None]
    span = (max(epochs) - min(epochs) + 1) if epochs else 0
    addresses = sorted({address for address, _, _, _, _ in entries if address is not None})

    written = 0
    lines = 0
    repetition = 0
    with open(options.out, "w", encoding="utf-8", newline="\n") as out:
        while written < options.bytes:
            mapping = {address: address_for(address, repetition) for address in addresses}
            shift = repetition * span
            chunk = []
            for address, middle, epoch, zone, rest in entries:
                if address is None:
                    line = middle + "\n"
                else:
                    stamp = format_time(epoch + shift)
                    line = f"{mapping[address]}{middle}{stamp} {zone}{rest}\n"
                chunk.append(line)
                written += len(line.encode("utf-8"))
                lines += 1
                if written >= options.bytes:
                    break
            out.write("".join(chunk))
            repetition += 1
    print(lines)


if __name__ == "__main__":
    main()
