"""CoNLL-U reader: comments, multiword ranges, empty nodes, compression, errors."""

import gzip
import lzma

import pytest

from mannlab.tasks.conllu import ConlluError, is_conllu, read_conllu

TEXT = """# global.columns = ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC

# sent_id = 1
# text = I don't know.
1	I	I	PRON	PRP	_	4	nsubj	_	_
2-3	don't	_	_	_	_	_	_	_	_
2	do	do	AUX	VBP	_	4	aux	_	_
3	n't	not	PART	RB	_	4	advmod	_	_
4	know	know	VERB	VB	_	0	root	_	SpaceAfter=No
4.1	knows	know	VERB	VB	_	_	_	0:root	_
5	.	.	PUNCT	.	_	4	punct	_	_

# sent_id = 2
1	Yes	yes	INTJ	UH	_	0	root	_	_
"""


def test_reads_words_and_tags(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(TEXT)
    sents = read_conllu(path)
    assert len(sents) == 2
    a, b = sents
    assert a.forms == ("I", "do", "n't", "know", ".")
    assert a.upos == ("PRON", "AUX", "PART", "VERB", "PUNCT")
    assert a.text == "I don't know." and a.line == 3
    assert b.forms == ("Yes",) and b.text is None and b.line == 13


@pytest.mark.parametrize("opener,suffix", [(lzma.open, ".xz"), (gzip.open, ".gz")])
def test_compressed(tmp_path, opener, suffix):
    path = tmp_path / f"tiny.conllu{suffix}"
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(TEXT)
    assert [s.forms for s in read_conllu(path)] == [s.forms for s in
                                                    read_conllu(_plain(tmp_path))]
    assert is_conllu(path) and not is_conllu(tmp_path / "x.txt")


def _plain(tmp_path):
    p = tmp_path / "plain.conllu"
    p.write_text(TEXT)
    return p


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conllu"
    lines = TEXT.splitlines()
    lines[9] = "4\tknow\tknow\tVERB\tVB\t_\t0\troot"  # 8 fields on line 10
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConlluError, match=r"bad\.conllu:10: expected 10 tab-separated fields"):
        read_conllu(path)


def test_bad_ids(tmp_path):
    path = tmp_path / "ids.conllu"
    path.write_text("1\ta\ta\tX\t_\t_\t0\troot\t_\t_\nx\tb\tb\tX\t_\t_\t1\tdep\t_\t_\n")
    with pytest.raises(ConlluError, match=r"ids\.conllu:2: bad word ID 'x'"):
        read_conllu(path)
    path.write_text("1\ta\ta\tX\t_\t_\t0\troot\t_\t_\n3\tb\tb\tX\t_\t_\t1\tdep\t_\t_\n")
    with pytest.raises(ConlluError, match=r"ids\.conllu:2: word ID 3 out of sequence"):
        read_conllu(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.conllu"):
        read_conllu(tmp_path / "nope.conllu")
