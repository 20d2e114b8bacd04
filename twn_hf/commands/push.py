"""`twn push`: upload a `twn export` folder to the Hugging Face Hub (`--dry-run` lists what would be uploaded)."""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi

logger = logging.getLogger("twn_hf")


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def run(args) -> int:
    from twn_hf.export import IGNORE_PATTERNS, check_export, hub_files

    folder = Path(args.folder)
    check_export(folder)
    files = hub_files(folder)
    readme = (folder / "README.md").read_text(encoding="utf-8")
    if args.repo_id not in readme:
        logger.warning("the card's usage snippets do not mention %s; re-export with --repo-id %s",
                       args.repo_id, args.repo_id)
    total = sum((folder / name).stat().st_size for name in files)
    target = f"{args.repo_id}" + (f" (revision {args.revision})" if args.revision else "")
    if args.dry_run:
        print(f"dry run: would upload {len(files)} files ({_size(total)}) from {folder} to {target}:")
        for name in files:
            print(f"  {name}  {_size((folder / name).stat().st_size)}")
        return 0

    api = HfApi(token=args.token)
    api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
    if args.revision and not args.create_pr:
        api.create_branch(args.repo_id, branch=args.revision, repo_type="model", exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(folder),
        repo_id=args.repo_id,
        repo_type="model",
        revision=args.revision,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
        ignore_patterns=IGNORE_PATTERNS,
    )
    print(f"uploaded {len(files)} files ({_size(total)}) to {target}: {getattr(commit, 'commit_url', commit)}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("push", help="upload a `twn export` folder to the Hugging Face Hub")
    parser.add_argument("folder", help="a folder written by `twn export`")
    parser.add_argument("--repo-id", required=True, help="target repository, e.g. your-name/twn-4b")
    parser.add_argument("--revision", help="branch to upload to (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--commit-message", default="Upload TWN checkpoint", help="commit message")
    parser.add_argument("--token", help="Hub token (default: the logged-in one / HF_TOKEN)")
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; upload nothing")
    parser.set_defaults(func=run)
