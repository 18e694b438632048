"""Makes ``small_graph.pkl``: a memory graph written by M3-Agent's own ``VideoGraph`` code, pickled
the way its memorization script does (``pickle.dump(video_graph, f)``).

    git clone https://github.com/ByteDance-Seed/m3-agent   # used: 0e3e419 (2026-02-12)
    python tests/data/m3agent/make_graph.py path/to/m3-agent tests/data/m3agent/small_graph.pkl

It runs in the checkout (the module reads configs/*.json at import), imports ``mmagent.videograph``
without the package's ``__init__`` (which loads every model of their pipeline), and stubs
``moviepy``: the graph code never uses it, only a helper module imports it. Face embeddings are 512-d lists (as
M3-Agent's face pipeline stores them), voice embeddings 192-d float32 numpy arrays (ERes2Net),
text embeddings 256-d lists (M3-Agent stores 3072-d OpenAI embeddings; fewer keep the file small,
and m3mem re-embeds text anyway). Two clips, three people, one face-voice equivalence.
"""

import base64
import os
import pickle
import sys
import types

import numpy as np

repo, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.chdir(repo)
sys.path.insert(0, repo)
stub = sys.modules["moviepy"] = types.ModuleType("moviepy")
stub.__all__ = []
stub.__getattr__ = lambda name: type(name, (), {})
package = sys.modules["mmagent"] = types.ModuleType("mmagent")  # the module, without the package's
package.__path__ = [os.path.join(repo, "mmagent")]  # __init__ (which loads every model of the pipeline)
from mmagent.videograph import VideoGraph  # noqa: E402

rng = np.random.default_rng(0)


def unit(dim):
    v = rng.standard_normal(dim)
    return v / np.linalg.norm(v)


def jpeg_b64():  # a real 8x8 JPEG
    import cv2

    ok, buf = cv2.imencode(".jpg", (rng.random((8, 8, 3)) * 255).astype(np.uint8))
    return base64.b64encode(buf.tobytes()).decode()


def text(s):
    return {"contents": [s], "embeddings": [unit(256).tolist()]}


g = VideoGraph()
anna = g.add_img_node({"embeddings": [unit(512).tolist() for _ in range(2)], "contents": [jpeg_b64()]})
ben = g.add_img_node({"embeddings": [unit(512).tolist()], "contents": [jpeg_b64()]})
anna_voice = g.add_voice_node({"embeddings": [unit(192).astype(np.float32) for _ in range(2)],
                               "contents": ["Welcome to the garden tour, everyone."]})
def add_clip(clip, memories, people):
    """Text nodes of one clip, each linked to the people it mentions (as M3-Agent's memorizer does)."""
    for s, kind in memories:
        node = g.add_text_node(text(s), clip, kind)
        for ent in people:
            if f"_{ent}>" in s:
                g.add_edge(node, ent)


add_clip(0, [
    (f"<face_{anna}> stands by a greenhouse holding a watering can.", "episodic"),
    (f"<voice_{anna_voice}> says: 'Welcome to the garden tour, everyone.'", "episodic"),
    (f"<face_{ben}> wears a red jacket and listens.", "episodic"),
    (f"Equivalence: <face_{anna}>, <voice_{anna_voice}>", "semantic"),
    (f"<face_{anna}> is the guide of the garden tour.", "semantic"),
], (anna, ben, anna_voice))
ben_voice = g.add_voice_node({"embeddings": [unit(192).astype(np.float32)],
                              "contents": ["How often do you water the tomatoes?"]})
add_clip(1, [
    (f"<voice_{ben_voice}> asks: 'How often do you water the tomatoes?'", "episodic"),
    (f"<face_{anna}> points at the tomato plants and smiles.", "episodic"),
    (f"<face_{ben}> is curious about growing vegetables.", "semantic"),
], (anna, ben, ben_voice))
g.refresh_equivalences()
with open(out, "wb") as f:
    pickle.dump(g, f)
print(out, os.path.getsize(out), "bytes;", len(g.nodes), "nodes;", g.character_mappings)
