"""Write data/babi/vocabulary.txt: the lower-cased words (no punctuation) of
every task's training and test file in a bAbI data directory, one a line,
sorted. Usage: python scripts/babi_vocabulary.py [DIRECTORY] (default: the
packaged src/mannlab/data/babi)."""

import sys
from pathlib import Path

from mannlab.tasks.babi import ALL_TASKS, VOCABULARY_FILE, iter_stories, story_words, task_file

directory = Path(sys.argv[1] if len(sys.argv) > 1 else
                 Path(__file__).resolve().parents[1] / "src/mannlab/data/babi")
words: set[str] = set()
for task in ALL_TASKS:
    for split in ("train", "test"):
        for story in iter_stories(task_file(directory, task, split)):
            words |= story_words(story)
(directory / VOCABULARY_FILE).write_text("".join(w + "\n" for w in sorted(words)))
print(f"{len(words)} words -> {directory / VOCABULARY_FILE}")
