"""How staff see a chunked transcode, in the back office and in `flask transcode --wait`: the
chunks done of all (the continuous audio encode is one of them), and which worker holds each
running chunk. One wording for both, from part_state.chunk_summary (the rows' one reader)."""
from dataclasses import dataclass

from videoflix.videos.jobs.part_state import chunk_summary
from videoflix.videos.jobs.state import parse_claim
from videoflix.videos.models.transcode_chunk import AUDIO


@dataclass(frozen=True)
class ChunkView:
    done: int
    total: int
    running: tuple  # ((chunk name, worker), ...) in the order of the timeline, the audio first

    @property
    def headline(self):
        return f"{self.done}/{self.total} chunks done"

    @property
    def text(self):
        """One line: "3/9 chunks done; running: chunk 3 on web1:4242, audio on web2:77"."""
        if not self.running:
            return self.headline
        return f"{self.headline}; running: " + ", ".join(f"{name} on {worker}" for name, worker in self.running)


def chunk_view(video):
    """The ChunkView of the video's running chunked job (a Video, or a row with its id, job_plan and
    claimed_by), or None when no chunked job runs."""
    summary = chunk_summary(video)
    if summary is None:
        return None
    done, total, running = summary
    return ChunkView(done, total, tuple((chunk_name(number), worker_name(claimed_by))
                                        for number, claimed_by in sorted(running, key=lambda r: r[0])))


def chunk_name(number):
    return "audio" if number == AUDIO else f"chunk {number}"


def worker_name(claimed_by):
    """The worker of a claim, "<host>:<pid>" (its token is no one's business); the claim as is when
    it is not one."""
    try:
        host, pid, _ = parse_claim(claimed_by or "")
    except ValueError:
        return claimed_by or "?"
    return f"{host}:{pid}"
