"""What a run of curl, wget, tar, unzip or scp did, from its arguments (stdlib only; pure, runs on EC2 and locally).

Enough of each program's options to find the URLs and the files written, or the archive and the folder it is
extracted into; an option this does not know is taken as a flag, so an unusual command line may be misread
(the agent then reports a path that does not exist, with no size or hash).
"""

import os
from urllib.parse import urlsplit, urlunsplit

CURL_VALUE = {"-o", "-d", "-H", "-u", "-X", "-A", "-e", "-b", "-c", "-m", "-x", "-r", "-T", "-w", "-K", "-F", "-C",
              "-E", "-z", "-Y", "-y", "-U", "-P", "-Q", "-t"}  # fmt: skip
CURL_LONG_VALUE = {"--output", "--output-dir", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--header",
                   "--user", "--request", "--user-agent", "--referer", "--cookie", "--cookie-jar", "--max-time",
                   "--connect-timeout", "--proxy", "--range", "--upload-file", "--write-out", "--config", "--form",
                   "--retry", "--continue-at", "--cert", "--cacert", "--time-cond", "--limit-rate", "--max-filesize",
                   "--url", "--resolve", "--oauth2-bearer", "--json"}  # fmt: skip
WGET_VALUE = {"-O", "-P", "-o", "-a", "-t", "-T", "-U", "-e", "-i", "-w", "-Q", "-l", "-A", "-R", "-D", "-I", "-X",
              "-B"}  # fmt: skip
WGET_LONG_VALUE = {"--output-document", "--directory-prefix", "--output-file", "--append-output", "--tries",
                   "--timeout", "--user-agent", "--header", "--execute", "--input-file", "--wait", "--quota",
                   "--user", "--password", "--level", "--post-data", "--post-file", "--base", "--limit-rate",
                   "--referer", "--load-cookies", "--save-cookies"}  # fmt: skip
SCP_VALUE = {"-c", "-D", "-F", "-i", "-J", "-l", "-o", "-P", "-S", "-X"}
TAR_VALUE = set("fbCTXHILNgKVF")
TAR_LONG_VALUE = {
    "--file",
    "--directory",
    "--files-from",
    "--exclude-from",
    "--format",
    "--use-compress-program",
    "--blocking-factor",
    "--exclude",
    "--transform",
    "--strip-components",
    "--owner",
    "--group",
}


def _options(args, short_value, long_value):
    """Split arguments into (options as [(name, value)], operands). Short flags may be bundled (-sSLo file)."""
    opts, operands, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            operands += args[i + 1 :]
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq and name in long_value and i + 1 < len(args):
                i, value = i + 1, args[i + 1]
            opts.append((name, value if (eq or name in long_value) else None))
        elif arg.startswith("-") and len(arg) > 1:
            for j, letter in enumerate(arg[1:], start=1):
                if "-" + letter in short_value:
                    value = arg[j + 1 :]
                    if not value and i + 1 < len(args):
                        i, value = i + 1, args[i + 1]
                    opts.append(("-" + letter, value))
                    break
                opts.append(("-" + letter, None))
        else:
            operands.append(arg)
        i += 1
    return opts, operands


def clean_url(url):
    """The URL without credentials or query string (which may carry tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:300]
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "") if "@" in parts.netloc else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:500]


def _url_name(url, default):
    name = os.path.basename(urlsplit(url).path.rstrip("/")) if "://" in url else ""
    return name or default


def curl_downloads(args, cwd):
    """[(url, output path or None for standard output)] of one curl run. Pure."""
    opts, operands = _options(args, CURL_VALUE, CURL_LONG_VALUE)
    urls = [v for n, v in opts if n == "--url" and v] + operands
    outdir = next((v for n, v in reversed(opts) if n == "--output-dir" and v), "")
    outputs = [(n, v) for n, v in opts if n in ("-o", "--output", "-O", "--remote-name")]
    remote_all = any(n == "--remote-name-all" for n, _ in opts)
    found = []
    for k, url in enumerate(urls):
        name, value = outputs[k] if k < len(outputs) else ("--remote-name-all" if remote_all else "", None)
        if name in ("-o", "--output") and value and value != "-":
            path = value
        elif name in ("-O", "--remote-name", "--remote-name-all"):
            path = _url_name(url, "curl_response")
        else:  # standard output (perhaps redirected: the file is then not known)
            found.append((url, None))
            continue
        found.append((url, os.path.normpath(os.path.join(cwd, outdir, path))))
    return found


def wget_downloads(args, cwd):
    """[(url, output path)] of one wget run (-O names one file for every URL). Pure."""
    opts, operands = _options(args, WGET_VALUE, WGET_LONG_VALUE)
    document = next((v for n, v in reversed(opts) if n in ("-O", "--output-document") and v), None)
    prefix = next((v for n, v in reversed(opts) if n in ("-P", "--directory-prefix") and v), ".")
    found = []
    for url in operands:
        if document == "-":
            found.append((url, None))
        elif document:
            found.append((url, os.path.normpath(os.path.join(cwd, document))))
        else:
            found.append((url, os.path.normpath(os.path.join(cwd, prefix, _url_name(url, "index.html")))))
    return found


def tar_extraction(args, cwd):
    """(archive path or None for standard input, destination folder) of a `tar` extraction, else None. Pure."""
    args = list(args)
    if args and not args[0].startswith("-"):  # old style: `tar xzf a.tgz`: letters take the next operands
        letters, rest = args[0], args[1:]
        args = []
        for letter in letters:
            args.append("-" + letter)
            if letter in TAR_VALUE and rest:
                args.append(rest.pop(0))
        args += rest
    opts, _ = _options(args, {"-" + c for c in TAR_VALUE}, TAR_LONG_VALUE)
    names = {n for n, _ in opts}
    if not names & {"-x", "--extract", "--get"}:
        return None
    archive = next((v for n, v in reversed(opts) if n in ("-f", "--file") and v), "-")
    dest = cwd
    for n, v in opts:
        if n in ("-C", "--directory") and v:
            dest = os.path.join(dest, v)
    return (None if archive == "-" else os.path.normpath(os.path.join(cwd, archive))), os.path.normpath(dest)


def unzip_extraction(args, cwd):
    """(archive path, destination folder) of an `unzip` that extracts to files, else None (a listing, a test). Pure."""
    opts, operands = _options(args, {"-d", "-P", "-x"}, set())
    if any(n in ("-l", "-v", "-t", "-Z", "-p", "-z") for n, _ in opts) or not operands:
        return None
    archive = os.path.normpath(os.path.join(cwd, operands[0]))
    if not os.path.exists(archive) and os.path.exists(archive + ".zip"):
        archive += ".zip"
    dest = next((v for n, v in reversed(opts) if n == "-d" and v), ".")
    return archive, os.path.normpath(os.path.join(cwd, dest))


def scp_transfer(args, cwd):
    """(direction, paths, recursive) of scp's server side over SSH: `scp -t TARGET` receives an upload into
    TARGET (a file, or a folder with -d or -r), `scp -f PATH...` sends a download; else None (an scp the student
    runs from the workspace to elsewhere). Pure."""
    opts, operands = _options(args, SCP_VALUE, set())
    names = {n for n, _ in opts}
    paths = [os.path.normpath(os.path.join(cwd, p)) for p in operands if p]
    if "-t" in names and len(paths) == 1:
        return "upload", paths, "-r" in names
    if "-f" in names and paths:
        return "download", paths, "-r" in names
    return None


def events_of(records, events_of_one):
    """The events of each tool-log record (`events_of_one(record)`); a record the wrapper did not write is
    skipped, never stuck on."""
    events = []
    for rec in records:
        try:
            events += events_of_one(rec)
        except (TypeError, ValueError, OSError):
            continue
    return events
