"""``hfssl data``: inspect and check datasets.

hfssl data info NAME [--image-size N] [--data-dir DIR]   splits, shapes, classes, counts, checksum
hfssl data list [--data-dir DIR]                          the MedMNIST table (+ DRIVE), files present
hfssl data verify [NAME ...] [--data-dir DIR]             MD5 / SHA-256 of the files present
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hfssl.errors import ConfigError, DataError

_ACTIONS = {
    "info": "show one dataset: splits, shapes, class names and counts, imbalance ratio, checksum status",
    "list": "list the MedMNIST subsets (+ DRIVE), their sizes and which files are present in the data root",
    "verify": "check MD5 (MedMNIST) / SHA-256 (DRIVE) of the data files present",
}

_NAME_HELP = (
    "data source: a MedMNIST subset (breastmnist, adrenalmnist3d, ...; also medmnist:NAME), drive, "
    "imagefolder:PATH or hub:ORG/NAME"
)


@dataclass
class DataRootArgs:
    """Where the data live."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "data root (default: $HFSSL_DATA_DIR, else ~/.cache/hfssl/data)"},
    )


@dataclass
class InfoArgs:
    """Options of ``hfssl data info``."""

    image_size: int | None = field(
        default=None,
        metadata={
            "help": "MedMNIST file size (28/64/128/224; 3D: 28/64; default 28); resize size for folders/Hub"
        },
    )
    verify: bool = field(default=True, metadata={"help": "check the file checksum (MD5 / SHA256SUMS)"})
    download: bool = field(
        default=True, metadata={"help": "download a missing MedMNIST file (never when offline)"}
    )
    validation_size: float = field(
        default=0, metadata={"help": "DRIVE: images (>=1) or fraction (<1) of train held out as validation"}
    )
    image_column: str = field(default="image", metadata={"help": "Hub datasets: the image column"})
    label_column: str = field(default="label", metadata={"help": "Hub datasets: the label column"})


def _help() -> str:
    width = max(map(len, _ACTIONS))
    lines = [
        "usage: hfssl data <info|list|verify> [options]",
        "",
        "Inspect and check datasets.",
        "",
        "commands:",
    ]
    lines += [f"  {a:<{width}}  {d}" for a, d in _ACTIONS.items()]
    lines += [
        "",
        "examples:",
        "  hfssl data list",
        "  hfssl data info breastmnist",
        "  hfssl data info adrenalmnist3d --image-size 64 --data-dir /data",
        "  hfssl data info drive --verify",
        "  hfssl data verify breastmnist drive",
        "",
        "Data root: --data-dir, else $HFSSL_DATA_DIR, else ~/.cache/hfssl/data "
        "(MedMNIST in <root>/medmnist/, DRIVE in <root>/drive/).",
    ]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    """Dispatch ``hfssl data <action>``; ``hfssl data`` alone prints help."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return 0
    action, rest = argv[0], argv[1:]
    if action == "info":
        return _info(rest)
    if action == "list":
        return _list(rest)
    if action == "verify":
        return _verify(rest)
    raise ConfigError(
        f"unknown data command {action!r}", f"use one of: {', '.join(_ACTIONS)} (see 'hfssl data --help')"
    )


# ---------------------------------------------------------------------------------------------------- info


def _info(argv: list[str]) -> int:
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl data info",
        _ACTIONS["info"],
        [InfoArgs, DataRootArgs],
        examples=[
            "hfssl data info breastmnist",
            "hfssl data info breastmnist --image-size 64",
            "hfssl data info adrenalmnist3d --data-dir /data --no-verify",
            "hfssl data info drive --validation-size 4",
            "hfssl data info imagefolder:./my_images --image-size 64",
        ],
    )
    parser.add_argument("name", metavar="NAME", help=_NAME_HELP)
    args, root, extra = parse(parser, argv)
    from hfssl.data.sources import describe, load_source, parse_spec

    kind, arg = parse_spec(extra.name)
    kwargs: dict = {}
    if kind in ("medmnist", "drive"):
        kwargs["verify"] = args.verify
    if kind == "medmnist":
        kwargs["download"] = args.download
    if kind == "drive" and args.validation_size:
        vs = args.validation_size
        kwargs["validation_size"] = int(vs) if vs >= 1 else float(vs)
    if kind == "hub":
        kwargs.update(image_column=args.image_column, label_column=args.label_column)
    dsd = load_source(extra.name, args.image_size, root.data_dir, **kwargs)
    desc = describe(dsd)
    first = next(iter(dsd.values()))
    lines = desc.lines()
    if kind == "medmnist":
        from hfssl.data.medmnist import medmnist_path

        size = 28 if args.image_size is None else args.image_size
        status = "verified" if first.info.download_checksums else "not checked"
        lines.insert(1, f"file:         {medmnist_path(arg, size, root.data_dir)}  (MD5 {status})")
        lines.insert(2, f"license:      {first.info.license}")
    elif kind == "drive":
        from hfssl.data.paths import source_dir

        status = "verified against SHA256SUMS" if args.verify else "not checked"
        lines.insert(1, f"folder:       {source_dir('drive', root.data_dir)}  (SHA-256 {status})")
    else:
        lines.insert(1, "checksum:     not checked (no published checksums for this source)")
    feats = ", ".join(f"{k}: {v!r}" for k, v in first.features.items())
    lines.append(f"features:     {feats}")
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------------------------------- list


def _present_sizes(folder: Path, name: str) -> dict[int, bool]:
    from hfssl.data.medmnist_info import get_info

    info = get_info(name)
    return {f.size: (folder / f.file_name).is_file() for f in info.files}


def _list(argv: list[str]) -> int:
    from hfssl.data.medmnist_info import MEDMNIST
    from hfssl.data.paths import data_root, source_dir
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl data list",
        _ACTIONS["list"],
        [DataRootArgs],
        examples=["hfssl data list", "hfssl data list --data-dir /data"],
    )
    (root,) = parse(parser, argv)
    medmnist_dir = source_dir("medmnist", root.data_dir)
    drive_dir = source_dir("drive", root.data_dir)
    base = data_root(root.data_dir)
    print(f"data root: {base}" + ("" if base.is_dir() else "  (does not exist yet)"))
    header = f"{'name':<16} {'dims':<4} {'task':<26} {'ch':>2} {'classes':>7}  {'train/val/test':<22} sizes (* = present)"
    print(header)
    print("-" * len(header))
    for name, info in MEDMNIST.items():
        present = _present_sizes(medmnist_dir, name)
        sizes = " ".join(f"{s}{'*' if ok else ''}" for s, ok in present.items())
        split = f"{info.n_train}/{info.n_val}/{info.n_test}"
        print(
            f"{name:<16} {info.spatial_dims}D   {info.task:<26} {info.n_channels:>2} {info.n_classes:>7}  {split:<22} {sizes}"
        )
    drive_ok = (drive_dir / "training" / "images").is_dir() and (drive_dir / "test" / "images").is_dir()
    print(
        f"{'drive':<16} 2D   {'segmentation':<26} {3:>2} {2:>7}  {'20/0/20':<22} 584x565{'*' if drive_ok else ''}"
    )
    n_files = sum(ok for n in MEDMNIST for ok in _present_sizes(medmnist_dir, n).values())
    print(
        f"\n{n_files} MedMNIST file(s) present in {medmnist_dir}; DRIVE {'present' if drive_ok else 'absent'} in {drive_dir}"
    )
    return 0


# ---------------------------------------------------------------------------------------------------- verify


def _verify(argv: list[str]) -> int:
    from hfssl.data.download import file_digest
    from hfssl.data.drive import verify_drive
    from hfssl.data.medmnist_info import MEDMNIST, get_info
    from hfssl.data.paths import source_dir
    from hfssl.data.sources import parse_spec
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl data verify",
        _ACTIONS["verify"] + "; with no NAME, every file present",
        [DataRootArgs],
        examples=[
            "hfssl data verify",
            "hfssl data verify breastmnist adrenalmnist3d",
            "hfssl data verify drive",
        ],
    )
    parser.add_argument(
        "names", metavar="NAME", nargs="*", help="MedMNIST subsets and/or drive (default: all)"
    )
    root, *extra = parse(parser, argv)
    names = list(extra[0].names) if extra else []
    explicit = bool(names)
    targets = (
        [parse_spec(n) for n in names] if names else [("medmnist", n) for n in MEDMNIST] + [("drive", "")]
    )
    problems: list[str] = []
    checked = 0
    for kind, arg in targets:
        if kind == "medmnist":
            folder = source_dir("medmnist", root.data_dir)
            info = get_info(arg)
            found = False
            for entry in info.files:
                path = folder / entry.file_name
                if not path.is_file():
                    continue
                found = True
                checked += 1
                ok = file_digest(path, "md5") == entry.md5
                print(f"{'verified' if ok else 'MISMATCH':<9} MD5  {path}")
                if not ok:
                    problems.append(f"{path} (MD5 mismatch)")
            if explicit and not found:
                print(f"{'missing':<9} MD5  {arg}: no file in {folder}")
                problems.append(f"{arg} (no file in {folder})")
        elif kind == "drive":
            folder = source_dir("drive", root.data_dir)
            if not (folder / "SHA256SUMS").is_file():
                if explicit:
                    print(f"{'missing':<9} SHA256  {folder / 'SHA256SUMS'}")
                    problems.append(f"{folder / 'SHA256SUMS'} (missing)")
                continue
            status = verify_drive(folder)
            bad = {p: s for p, s in status.items() if s != "verified"}
            checked += len(status)
            for rel, s in sorted(bad.items()):
                print(f"{s.upper():<9} SHA256  {folder / rel}")
                problems.append(f"{folder / rel} ({s})")
            print(
                f"{'verified' if not bad else 'FAILED':<9} SHA256  {folder}: {len(status) - len(bad)}/{len(status)} files OK"
            )
        else:
            raise DataError(
                f"{kind}:{arg} has no published checksums to verify", "verify MedMNIST subsets or drive"
            )
    if problems:
        listing = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise DataError(
            f"{len(problems)} problem(s) in {checked} checked file(s): {listing}",
            "delete the bad files and download them again (hfssl data info NAME downloads a missing MedMNIST file)",
        )
    print(f"all {checked} file(s) verified", file=sys.stdout)
    return 0
