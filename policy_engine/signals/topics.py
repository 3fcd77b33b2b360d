"""Coarse topic ids from keyword lexicons.

`distinct topic(prompt)` per account measures breadth: an extraction campaign
sweeps many topics, most applications stay in a few. The classifier only has
to be stable and roughly right: each word of the normalised prompt that is in
a topic's lexicon scores for that topic (words are compared by their first
6 letters, so "vulnerabilities" finds "vulnerability"), the best score wins, ties go to the topic listed first, no hit at all is
"general". Lexicons are mostly English with a few common words of other
languages; a prompt in another language falls to "general" or "translation".
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter

from .prompt import _normalized_bytes, normalize
from .registry import signal

# Order matters only to break ties: more specific topics come first.
TOPIC_LEXICONS: dict[str, str] = {
    "agentic_tools": """
        tool tools api apis endpoint endpoints json schema
        agent agents agentic browse browser click navigate webpage scrape crawl
        plugin plugins invoke invocation webhook curl shell terminal command
        commands execute workflow automate automation orchestrate mcp
    """,
    "security": """
        exploit exploits vulnerability vulnerabilities cve malware ransomware
        phishing payload payloads xss injection sqli csrf privilege escalation
        pentest penetration firewall encryption decrypt hash hashes password
        passwords credential credentials backdoor rootkit botnet ddos attacker
        threat threats breach zero-day shellcode reverse-engineer obfuscate
    """,
    "code": """
        code coding python javascript typescript java rust golang c++ cpp kotlin
        swift ruby php sql function functions class method compile compiler
        debug bug bugs error stacktrace exception refactor implement program
        programming script variable loop recursion array algorithm library
        framework react django flask regex git unittest repository snippet
    """,
    "math": """
        math mathematics equation equations integral integrals derivative
        derivatives calculus algebra geometry theorem proof prove lemma
        matrix matrices vector vectors polynomial prime primes solve
        probability arithmetic fraction fractions logarithm trigonometry
        sum factorial modulo topology eigenvalue limit limits
    """,
    "data_analysis": """
        dataset datasets data csv spreadsheet excel pandas dataframe regression
        statistics statistical correlation variance median mean histogram
        chart charts plot visualize visualization dashboard pivot aggregate
        cluster clustering outlier outliers forecast metrics analysis analyze
    """,
    "reasoning": """
        puzzle puzzles riddle riddles logic logical deduce deduction infer
        inference syllogism paradox premise premises conclusion fallacy
        reasoning reason brainteaser hypothetical liar truthful knights knaves
    """,
    "chemistry": """
        chemistry chemical chemicals molecule molecules compound compounds
        reaction reactions synthesis synthesize reagent reagents catalyst
        molar stoichiometry acid acids base bases oxidation reduction titration
        organic inorganic polymer solvent solvents precursor precursors
        periodic element elements isotope ph química chimie chemie
    """,
    "biology": """
        biology biological cell cells gene genes genome dna rna protein proteins
        enzyme enzymes bacteria bacterial virus viruses viral pathogen
        pathogens organism organisms evolution species mutation crispr
        microbiology ecology photosynthesis mitosis meiosis biología biologie
    """,
    "medical": """
        medical medicine doctor patient patients symptom symptoms diagnosis
        diagnose disease diseases treatment treatments dose dosage drug drugs
        prescription clinical surgery therapy cancer diabetes infection pain
        vaccine hospital nurse blood heart medication chronic medicina médico
    """,
    "legal": """
        legal law laws lawyer attorney contract contracts clause clauses
        liability lawsuit court courts judge statute statutes regulation
        regulations compliance gdpr copyright trademark patent litigation
        plaintiff defendant jurisdiction tenant landlord agreement
    """,
    "finance": """
        finance financial stock stocks invest investing investment investments
        portfolio bond bonds dividend loan loans mortgage tax taxes
        budget accounting revenue profit cash trading trader crypto bitcoin
        inflation bank banking valuation retirement
    """,
    "physics": """
        physics quantum particle particles energy force forces velocity
        acceleration momentum gravity relativity thermodynamics entropy
        electron electrons photon photons magnetic magnetism wave waves
        newton mechanics optics nuclear
    """,
    "translation": """
        translate translation translations translated translator
        traducir traduce traducción traduire traduction traduis übersetzen
        übersetze übersetzung tradurre traduzione traduzir tradução
        переведи перевод перевести
    """,
    "writing": """
        essay essays story stories poem poems poetry novel novels chapter
        character characters narrative fiction rewrite draft
        paragraph blog article headline slogan lyrics song screenplay
        proofread tone prose haiku sonnet limerick
    """,
    "business": """
        business marketing startup startups customer customers sales product
        strategy brand branding pitch investor investors market competitor
        competitors pricing management employee employees hiring resume
        interview meeting email proposal presentation
    """,
    "history": """
        history historical war wars empire empires ancient medieval century
        revolution dynasty civilization civilizations colonial pharaoh
        roman greek renaissance treaty monarchy archaeology
    """,
    "education": """
        homework exam exams study studying student students teacher teach
        lesson lessons curriculum quiz grade school university course
        syllabus tutor learn learning beginner
    """,
    "philosophy": """
        philosophy philosophical ethics ethical moral morality metaphysics
        epistemology existential consciousness meaning virtue kant
        nietzsche plato aristotle utilitarian stoic stoicism
    """,
    "lifestyle": """
        recipe recipes cook cooking bake baking ingredients meal diet
        workout exercise fitness travel trip itinerary vacation hotel garden
        gardening fashion outfit wedding relationship dating
    """,
    "entertainment": """
        movie movies film films music album band game games gaming video
        tv series episode actor actress celebrity anime sport sports
        football soccer basketball
    """,
}

GENERAL = "general"
TOPICS: tuple[str, ...] = (*TOPIC_LEXICONS, GENERAL)

# Words are compared by their first 6 letters, which folds most inflections
# ("vulnerabilities" and "vulnerability") into one key with one dict lookup.
_KEY_LETTERS = 6
_key = itemgetter(slice(0, _KEY_LETTERS))


def _build_index() -> dict[bytes, str]:
    """6-letter key (UTF-8) -> topic; a key in two lexicons keeps the first topic."""
    index: dict[bytes, str] = {}
    for name, lexicon in TOPIC_LEXICONS.items():
        for raw in lexicon.split():
            for word in normalize(raw).split():
                index.setdefault(_key(word.encode("utf-8")), name)
    return index


_INDEX = _build_index()
_RANK = {name: rank for rank, name in enumerate(TOPICS)}


@signal
def topic(s: str | None) -> str | None:
    """The prompt's coarse topic id (one of TOPICS)."""
    if s is None:
        return None
    # Lookups run in C through map(); only the (few) hits reach the Counter.
    # Keys are bytes: 6 bytes of a non-ASCII word is fewer letters, which only
    # makes its prefix match a little looser.
    words = _normalized_bytes(s).split()
    hits = Counter(filter(None, map(_INDEX.get, map(_key, words))))
    if not hits:
        return GENERAL
    # Highest count; on a tie the topic listed first.
    return min(hits.items(), key=lambda kv: (-kv[1], _RANK[kv[0]]))[0]
