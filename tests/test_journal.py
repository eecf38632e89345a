"""The journal file itself: lines copied into the mapped file where the file system allows,
written with ``write()`` where it does not, and read back the same either way (`journal.read`,
what the replay after a kill uses)."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import StateError
from jupyter_pipelines.store import journal
from jupyter_pipelines.store.journal import Journal, plain_json

WIDTH = 16  # values of a step run's row


def line(i: int) -> str:
    return plain_json({"run": [f"S{i}", "processing", "Succeeded", float(i), i + 0.5, 1,
                               "k" * 32, None, None, None, None, "", "", None, None, None]})


def names(j: Journal) -> list[str]:
    rows, end = journal.read(j.path, WIDTH)
    assert end is None
    return [row[0] for row in rows]


@pytest.fixture(autouse=True)
def no_spare():
    """Each test starts without this process's spare journal (`Journal.remove`), and leaves none."""
    journal._drop_spares()
    yield
    journal._drop_spares()


@pytest.fixture
def no_room(monkeypatch):
    """A file system that will not reserve blocks (as ZFS or some network file systems)."""
    def refuse(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(journal, "_fallocate", refuse)


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
def test_a_mapped_journal_reads_back_every_line_as_it_grows_and_nothing_stale_after_a_clear(
        tmp_path):
    j = Journal(tmp_path, "run/1")
    for i in range(2000):  # ~240 KB: past the first map, mapped again twice
        j.append(line(i))
    data = j.path.read_bytes()
    assert len(data) > j.size and data[j.size:] == bytes(len(data) - j.size)  # zeros past them
    assert len(data) == j._room  # each growth's zeros went after the last map, not further
    assert names(j) == [f"S{i}" for i in range(2000)]
    j.clear()  # committed: a replay now finds nothing...
    assert names(j) == []
    j.append(line(7) + "\n" + line(8))  # ...and then only what came after, none of the old lines
    assert names(j) == ["S7", "S8"]
    path = j.path
    j.remove()
    assert not path.exists() and journal.left_behind(tmp_path) == {}


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
def test_a_removed_journal_is_the_next_journals_file_its_pages_mapped_already(tmp_path):
    """A journal whose execution ended is cleared and kept (its pages stay mapped: a new file's
    fault in one by one at their first copy); the next journal opened in that state folder
    renames it to its own name and holds only its own lines. Another folder keeps its own."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = Journal(tmp_path / "a", "first")
    for i in range(300):
        first.append(line(i))
    mapped = first._map
    first.remove()
    (spare,) = (tmp_path / "a" / "journal").iterdir()
    assert spare.name == journal.spare_name() and journal.left_behind(tmp_path / "a") == {}
    assert spare.read_bytes() == bytes(spare.stat().st_size)  # zeros: nothing to replay

    elsewhere = Journal(tmp_path / "b", "elsewhere")
    elsewhere.append(line(0))
    assert elsewhere._map is not mapped and spare.exists()
    second = Journal(tmp_path / "a", "second")
    second.append(line(1))
    assert second._map is mapped and not spare.exists()
    assert journal.left_behind(tmp_path / "a") == {"second": second.path}
    assert names(second) == ["S1"]
    second.remove()
    elsewhere.remove()
    assert journal.left_behind(tmp_path / "a") == journal.left_behind(tmp_path / "b") == {}
    assert set(journal._SPARES) == {tmp_path / "a" / "journal", tmp_path / "b" / "journal"}


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
def test_only_the_last_folders_keep_a_spare_and_one_whose_folder_went_gives_way(tmp_path):
    import shutil

    folders = [tmp_path / str(i) for i in range(journal.SPARE_FOLDERS + 1)]
    for i, folder in enumerate(folders):
        folder.mkdir()
        j = Journal(folder, f"run{i}")
        j.append(line(i))
        j.remove()
    kept = [f for f in folders if (f / "journal" / journal.spare_name()).exists()]
    assert kept == folders[1:] and list(journal._SPARES) == [f / "journal" for f in kept]

    shutil.rmtree(folders[1])  # its spare's file goes with it
    folders[1].mkdir()
    again = Journal(folders[1], "again")
    again.append(line(9))
    assert names(again) == ["S9"] and folders[1] / "journal" not in journal._SPARES


def test_opening_the_history_removes_the_spares_of_dead_processes_only(tmp_path):
    import subprocess
    import sys

    from jupyter_pipelines.store.history import History

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = tmp_path / "journal"
    folder.mkdir()
    dead_spare = folder / journal.spare_name(int(dead.stdout))
    alive_spare = folder / journal.spare_name(os.getppid())  # (pytest's parent: alive)
    other_host = folder / "another-host-1.spare"
    for path in (dead_spare, alive_spare, other_host):
        path.write_bytes(bytes(4096))
    History(tmp_path).close()
    assert sorted(p.name for p in folder.iterdir()) == sorted([alive_spare.name, other_host.name])


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
def test_a_line_a_kill_cut_short_in_the_mapped_file_is_dropped(tmp_path):
    """A copy into the mapping stopped part-way leaves zeros inside the last line (even after
    its newline was copied): `read` stops at the first zero and drops the line."""
    j = Journal(tmp_path, "cut")
    j.append(line(1) + "\n" + line(2))
    last = (line(3) + "\n").encode()
    with j.path.open("r+b") as handle:  # the same bytes the mapping holds
        handle.seek(j.size)
        handle.write(last[:20])
        handle.seek(j.size + 40)
        handle.write(last[40:])
    assert names(j) == ["S1", "S2"]
    j.close()


def test_without_room_to_reserve_the_journal_writes_its_lines(tmp_path, no_room):
    j = Journal(tmp_path, "written")
    j.append(line(1))
    j.append(line(2) + "\n" + line(3))
    assert j.path.stat().st_size == j.size  # written, not mapped: no zeros past the lines
    assert names(j) == ["S1", "S2", "S3"]
    j.clear()
    assert j.path.stat().st_size == 0
    j.append(line(4))
    assert names(j) == ["S4"]
    j.close()


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
@pytest.mark.parametrize("failing", ["_fallocate", "_append_zeros"])
def test_a_mapped_journal_that_cannot_grow_goes_on_with_write(tmp_path, monkeypatch, failing):
    """The disk fills up (or the file system refuses) when the journal needs a larger map,
    as its new pages are written or its blocks reserved: the file is cut back to its lines
    and the next ones are written after them."""
    reserve, calls = getattr(journal, failing), []

    def once(fd, *args):
        calls.append(args)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        reserve(fd, *args)

    monkeypatch.setattr(journal, failing, once)
    j = Journal(tmp_path, "full")
    for i in range(1000):  # ~120 KB: past the first map
        j.append(line(i))
    assert len(calls) == 2 and j.path.stat().st_size == j.size
    assert names(j) == [f"S{i}" for i in range(1000)]
    j.close()


def test_a_journal_no_file_system_takes_fails_the_append_with_a_clear_error(tmp_path):
    """Not a folder where the journal goes: the append says which file and what to do."""
    (tmp_path / "journal").write_text("a file where the folder should be")
    j = Journal(tmp_path, "nowhere")
    with pytest.raises(StateError) as raised:
        j.append(line(1))
    message = str(raised.value)
    assert "could not be recorded in the history's journal" in message
    assert "JUPYTER_PIPELINES_HOME" in message


def test_a_run_whose_file_system_will_not_map_is_journaled_and_recorded_the_same(tmp_path,
                                                                                no_room):
    p = Pipeline("written", home=tmp_path / "state")
    p.add_step("A", "a = 1")
    p.add_step("B", "b = a + 1")
    ex = p.start(display=False)
    assert ex.status == "Succeeded" and ex.result("B", "b") == 2
    rows = {r["step"]: r["status"] for r in p.workspace.history.step_runs(ex.id)}
    assert rows == {"A": "Succeeded", "B": "Succeeded"}
    assert not list((tmp_path / "state" / "journal").glob("*.jsonl"))  # committed, removed


def test_a_start_and_a_version_still_to_record_are_read_back_from_the_journal(tmp_path):
    """A run's start, and a new version's document, are the journal's first lines, for the
    history's thread to record with the first commit, or a replay after a kill (`journal.head`):
    the document as the very text its digest was made of; a line cut short reads as none."""
    from jupyter_pipelines.snapshot import document_text
    from jupyter_pipelines.store.rows import start_line, version_line

    p = Pipeline("versioned", home=tmp_path / "state")
    p.add_step("First", "x = {'a': 'é\\n\"'}")
    text, digest = document_text(p)
    start = ["v", "versioned", digest, '{"n": 1.5, "s": "\\u00e9"}', 1.25, 42, "host", None, "/w"]
    j = Journal(tmp_path, "v")
    j.append(start_line(start) + "\n" + version_line(digest, text))
    j.append(line(1))
    assert journal.head(j.path) == (start, (digest, text))
    assert hashlib.sha256(journal.head(j.path)[1][1].encode()).hexdigest() == digest
    assert names(j) == ["S1"]  # (neither is a step run)
    whole = j.path.read_bytes().split(b"\0")[0]
    j.remove()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(whole[:whole.index(b"\n") - 1])  # a kill part-way through the first line
    assert journal.head(cut) == (None, None)
    cut.write_bytes(whole[:whole.rindex(b"]}\n{")])  # ... through the version's line
    assert journal.head(cut) == (start, None)
    earlier = tmp_path / "earlier.jsonl"  # an earlier release: no start, the version by its id
    earlier.write_bytes(version_line(digest, text).replace(f'"{digest}"', "7").encode() + b"\n")
    assert journal.head(earlier) == (None, (7, text))
    assert journal.head(tmp_path / "none.jsonl") == (None, None)


@pytest.mark.skipif(not hasattr(os, "fork") or journal._fallocate is None,
                    reason="fork and a mapped journal needed")
def test_a_forked_child_neither_takes_nor_removes_its_parents_spare(tmp_path):
    j = Journal(tmp_path, "parent")
    j.append(line(1))
    j.remove()
    spare, mapped = tmp_path / "journal" / journal.spare_name(), j._map
    pid = os.fork()
    if pid == 0:  # the child: its own journal is a new file, and its exit leaves the spare
        code = 0
        try:
            child = Journal(tmp_path, "child")
            child.append(line(2))
            code = 0 if child._map is not mapped and spare.exists() else 1
            child._drop()
            journal._drop_spares()
        except BaseException:
            code = 2
        os._exit(code if spare.exists() else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    again = Journal(tmp_path, "again")
    again.append(line(3))
    assert again._map is mapped and names(again) == ["S3"]


@pytest.mark.skipif(journal._fallocate is None, reason="no posix_fallocate here: never mapped")
def test_runs_in_one_state_folder_reuse_its_journal_file_and_keep_their_versions(tmp_path):
    """Through `Pipeline.start`: the first run's journal stays as the folder's spare, the next
    run (a new version: its first step changed) journals into that file, and each execution's
    version document reaches the history (written by the history's thread)."""
    home = tmp_path / "state"

    def run(first: int):
        p = Pipeline("spared", home=home)
        p.add_step("A", f"a = {first}")
        p.add_step("B", "b = a + 1")
        ex = p.start(display=False)
        p.workspace.history.settle()
        assert ex.status == "Succeeded"
        return p, ex

    run(1)
    (spare,) = (home / "journal").iterdir()
    assert spare.name == journal.spare_name()
    mapped = journal._SPARES[home / "journal"]._map
    p, ex = run(2)
    assert [f.name for f in (home / "journal").iterdir()] == [spare.name]  # the same file again
    assert journal._SPARES[home / "journal"]._map is mapped
    again = p.load_execution(ex.id)
    assert list(again.graph.order) == ["A", "B"] and again.result("B", "b") == 3
    history = p.workspace.history
    versions = {e["id"]: history.version(e["version_id"]) for e in history.executions()}
    assert len(versions) == 2 and all(v is not None for v in versions.values())
    assert sorted(v["steps"][0]["code"] for v in versions.values()) == ["a = 1", "a = 2"]


def test_an_execution_only_in_its_journal_is_recorded_once_its_process_is_gone(tmp_path):
    """A process killed before its run's first commit leaves the run only in its journal (its
    start, its version's document, its finished steps): the next `History` opened on the folder
    records it from there, interrupted, unless that process still runs (its first commit is
    to come); a version line that does not match its digest leaves the document out."""
    import socket
    import subprocess
    import sys

    from jupyter_pipelines.snapshot import document_text, to_document
    from jupyter_pipelines.store.history import History
    from jupyter_pipelines.store.rows import start_line, version_line

    home = tmp_path / "state"
    p = Pipeline("orphan", home=home)
    p.add_step("S1", "x = 1")
    text, digest = document_text(p)
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    host = socket.gethostname()

    def left(eid: str, pid: int, document: str) -> Journal:
        home.mkdir(exist_ok=True)
        j = Journal(home, eid)
        j.append(start_line([eid, "orphan", digest, '{"n": 2}', 1.0, pid, host, None, "/w"]) + "\n"
                 + version_line(digest, document) + "\n" + line(1))
        j.close()
        return j

    gone, running = left("gone", dead, text), left("running", os.getppid(), text)
    history = History(home)
    (doc,) = history.executions()
    assert doc["id"] == "gone" and doc["status"] == "Failed" and "Interrupted" in doc["failure_reason"]
    assert doc["parameters"] == {"n": 2} and doc["pid"] == dead and doc["workdir"] == "/w"
    assert [(r["step"], r["status"]) for r in history.step_runs("gone")] == [("S1", "Succeeded")]
    assert history.version(doc["version_id"]) == to_document(p)
    assert not gone.path.exists() and running.path.exists()  # (its process runs: not its to say)
    history.close()

    other = tmp_path / "other"
    other.mkdir()
    left_over = Journal(other, "tampered")
    left_over.append(start_line(["tampered", "orphan", digest, "{}", 1.0, dead, host, None, "/w"])
                     + "\n" + version_line(digest, text.replace("x = 1", "x = 2")))
    left_over.close()
    history = History(other)  # (no database yet: made to record it)
    (doc,) = history.executions()
    assert doc["id"] == "tampered" and history.version(doc["version_id"]) is None
    history.close()
