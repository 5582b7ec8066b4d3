"""Deterministic multilingual sentence generator for the synthetic (espeak-ng) speech corpus.

Each language has a small template grammar: subject / verb phrase / object / place / time slots.
Grammatical agreement is handled by writing the agreeing pieces together as phrases (a verb
phrase carries one form per subject class, e.g. singular/plural, or the four Polish past-tense
forms), and semantic coherence by grouping verb phrases with the places they fit ("bought a warm
coat" goes with shops, "fed the ducks" with parks and rivers).

Every template is a mixed-radix space of slot choices, and a language's sentence pool is the
concatenation of its templates, so sentence ``i`` of the pool is decoded directly from the index.
``generate_sentences`` samples ``n`` distinct indices with a ``random.Random`` seeded from a SHA-256
of (language, seed), which makes the output stable across processes and platforms (no ``hash()``).

English matters most (Whisper tiny.en must transcribe espeak-ng renderings of it), so the English
grammar uses only common words, no digits, names, abbreviations, contractions or compound words
with uncertain spacing, and keeps every sentence between 5 and 14 words.

Notes on espeak-ng (1.51):
- Mandarin uses the ``cmn-latn-pinyin`` voice: the plain ``cmn`` voice converts characters to
  tone-numbered pinyin and then reads that pinyin as *English* ("hai two zi five ..."), a known
  espeak-ng bug; ``cmn-latn-pinyin`` reads the same characters as Mandarin.
- Japanese kanji are read as "Chinese letter", so the Japanese grammar is written in kana only
  (hiragana, katakana for loanwords), with spaces between phrases as in children's books, and
  avoids the particles は and へ, which espeak-ng reads as "ha" and "he".
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
from dataclasses import dataclass
from functools import cache

__all__ = ["LANGUAGES", "Language", "generate_sentences", "sentence_pool_size"]


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    espeak_voice: str
    cer: bool  # scored by character error rate (no word boundaries) instead of word error rate


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "en-us", False),
        Language("de", "German", "de", False),
        Language("fr", "French", "fr", False),  # "fr-fr" drops +variants in espeak-ng 1.51
        Language("es", "Spanish", "es", False),
        Language("it", "Italian", "it", False),
        Language("pt", "Portuguese", "pt", False),
        Language("nl", "Dutch", "nl", False),
        Language("pl", "Polish", "pl", False),
        Language("zh", "Mandarin Chinese", "cmn-latn-pinyin", True),
        Language("ja", "Japanese", "ja", True),
        Language("ko", "Korean", "ko", True),
    )
}


# --------------------------------------------------------------------------------------------
# Template machinery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """A format pattern and its slots; slot options are strings or tuples (use ``{v[0]}``)."""

    pattern: str
    slots: tuple[tuple[str, tuple], ...]

    @property
    def size(self) -> int:
        return math.prod(len(options) for _, options in self.slots)

    def render(self, index: int) -> str:
        values = {}
        for name, options in reversed(self.slots):
            index, digit = divmod(index, len(options))
            values[name] = options[digit]
        return _finish(self.pattern.format(**values))


def _t(pattern: str, **slots: tuple) -> _Template:
    return _Template(pattern, tuple(slots.items()))


_SPACES = re.compile(r" {2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.?])")


def _finish(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text.strip()))
    for i, ch in enumerate(text):  # capitalise the first letter (after a leading "¿")
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


def _forms(vps: tuple, cls: int) -> tuple:
    """The agreeing form of each verb phrase for subject class ``cls``."""
    return tuple(vp[cls] for vp in vps)


# --------------------------------------------------------------------------------------------
# English: (past, base) verb phrases grouped with the places they fit
# --------------------------------------------------------------------------------------------

EN_SUBJECTS = (
    "I",
    "we",
    "my sister",
    "my brother",
    "my mother",
    "my father",
    "my parents",
    "my cousin",
    "my best friend",
    "our neighbor",
    "my teacher",
    "the children",
    "the old man",
    "the old woman",
    "the young man",
    "the young woman",
    "his sister",
    "my uncle",
    "my grandmother",
    "my grandfather",
    "our family",
    "the whole family",
    "the boys",
)
EN_QUESTION_SUBJECTS = (
    "your sister",
    "your parents",
    "your grandmother",
    "your mother",
    "your father",
    "the children",
    "the old man",
    "the old woman",
)
EN_TIMES_PAST = (
    "yesterday",
    "last night",
    "this morning",
    "after lunch",
    "after dinner",
    "last summer",
    "in the afternoon",
    "after school",
    "after work",
    "last week",
    "early this morning",
    "on Sunday",
    "on Saturday",
)
EN_TIMES_FRONT = (
    "yesterday",
    "last night",
    "this morning",
    "after lunch",
    "after dinner",
    "last summer",
    "in the afternoon",
    "after school",
    "on Sunday",
)
EN_TIMES_FUTURE = (
    "tomorrow",
    "next week",
    "next summer",
    "this weekend",
    "after lunch",
    "after dinner",
    "tomorrow morning",
    "this afternoon",
    "on Sunday",
)
EN_TIMES_QUESTION_PAST = ("yesterday", "last night", "this morning", "after lunch", "last summer")
EN_TIMES_QUESTION_FUTURE = ("tomorrow", "next week", "this weekend", "next summer", "after school")

# Phrases that Whisper tiny.en often misheard in espeak-ng renderings were replaced after a
# measured check (e.g. "bought a ...", "tonight", "by the lake", plural objects before "at the").
EN_GROUPS = (
    (  # outdoors
        ("in the park", "near the river", "in the garden", "near the pond", "behind the school", "in the big field"),
        (
            ("played a game", "play a game"),
            ("took a long walk", "take a long walk"),
            ("walked the dog", "walk the dog"),
            ("played with the dog", "play with the dog"),
            ("had a picnic", "have a picnic"),
            ("watched the birds", "watch the birds"),
            ("flew a kite", "fly a kite"),
            ("picked some flowers", "pick some flowers"),
            ("rested under a tree", "rest under a tree"),
            ("looked for the cat", "look for the cat"),
            ("climbed a tree", "climb a tree"),
            ("watched the sunset", "watch the sunset"),
        ),
    ),
    (  # shopping
        (
            "at the market",
            "in the city",
            "in the village",
            "in the big store",
            "in the small shop",
            "at the corner store",
        ),
        (
            ("bought some fresh fruit", "buy some fresh fruit"),
            ("found a small gift", "find a small gift"),
            ("looked for new shoes", "look for new shoes"),
            ("looked for a bike", "look for a bike"),
            ("bought a small table", "buy a small table"),
            ("paid for the food", "pay for the food"),
            ("bought some new clothes", "buy some new clothes"),
            ("picked up some milk", "pick up some milk"),
            ("found a good book", "find a good book"),
            ("sold some old books", "sell some old books"),
        ),
    ),
    (  # cooking and chores
        ("at home", "in the kitchen", "in the small kitchen"),
        (
            ("cooked some rice", "cook some rice"),
            ("made some soup", "make some soup"),
            ("baked a chocolate cake", "bake a chocolate cake"),
            ("made some tea", "make some tea"),
            ("made some coffee", "make some coffee"),
            ("cleaned the floor", "clean the floor"),
            ("cleaned the oven", "clean the oven"),
            ("fixed the old chair", "fix the old chair"),
            ("cleaned the windows", "clean the windows"),
            ("set the table", "set the table"),
        ),
    ),
    (  # reading and study
        ("in the library", "at the kitchen table", "in the living room", "in the reading room", "in the classroom"),
        (
            ("read a long book", "read a long book"),
            ("wrote a letter", "write a letter"),
            ("studied for the test", "study for the test"),
            ("finished the homework", "finish the homework"),
            ("learned a new song", "learn a new song"),
            ("wrote a short story", "write a short story"),
            ("did some math", "do some math"),
            ("finished the report", "finish the report"),
        ),
    ),
    (  # out in town
        ("in the city", "at the coffee shop", "near the old bridge", "at the train station", "at the hotel"),
        (
            ("met an old friend", "meet an old friend"),
            ("waited for the train", "wait for the train"),
            ("talked with a neighbor", "talk with a neighbor"),
            ("drank some coffee", "drink some coffee"),
            ("asked for directions", "ask for directions"),
            ("waited in line", "wait in line"),
            ("waited for a friend", "wait for a friend"),
        ),
    ),
    (  # relaxing at home
        ("at home", "in the living room", "in the family room", "on the porch"),
        (
            ("watched a funny movie", "watch a funny movie"),
            ("listened to the radio", "listen to the radio"),
            ("played cards", "play cards"),
            ("sang some songs", "sing some songs"),
            ("read a story", "read a story"),
            ("took a short nap", "take a short nap"),
            ("played the piano", "play the piano"),
            ("drank warm milk", "drink warm milk"),
            ("played a board game", "play a board game"),
        ),
    ),
    (  # going places
        (
            "to the city",
            "to the beach",
            "to the village",
            "to the park",
            "to the market",
            "to the river",
            "to the hospital",
            "to the library",
            "to the old farm",
        ),
        (
            ("walked", "walk"),
            ("went", "go"),
            ("took the train", "take the train"),
            ("went back", "go back"),
            ("ran", "run"),
            ("came back", "come back"),
            ("returned", "return"),
        ),
    ),
)


def _english() -> tuple[_Template, ...]:
    out = []
    for places, vps in EN_GROUPS:
        past, base = _forms(vps, 0), _forms(vps, 1)
        out += [
            _t("{s} {v} {p} {t}.", s=EN_SUBJECTS, v=past, p=places, t=EN_TIMES_PAST),
            _t("{t}, {s} {v} {p}.", t=EN_TIMES_FRONT, s=EN_SUBJECTS, v=past, p=places),
            _t("{s} {v} {p}.", s=EN_SUBJECTS, v=past, p=places),
            _t("{s} will {v} {p} {t}.", s=EN_SUBJECTS, v=base, p=places, t=EN_TIMES_FUTURE),
            _t("did {s} {v} {p} {t}?", s=EN_QUESTION_SUBJECTS, v=base, p=places, t=EN_TIMES_QUESTION_PAST),
            _t("will {s} {v} {p} {t}?", s=EN_QUESTION_SUBJECTS, v=base, p=places, t=EN_TIMES_QUESTION_FUTURE),
        ]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# German and Dutch: V2 word order; verb phrase = (past sg, past pl, object, aux kind, participle)
# --------------------------------------------------------------------------------------------

DE_SUBJECTS = (
    (
        "mein Bruder",
        "meine Schwester",
        "unser Nachbar",
        "meine Mutter",
        "mein Vater",
        "der alte Mann",
        "die junge Frau",
        "meine Freundin",
        "unsere Lehrerin",
        "mein Onkel",
    ),
    ("die Kinder", "meine Eltern", "die Schüler", "unsere Nachbarn", "meine Freunde", "meine Großeltern"),
)
DE_QUESTION_SUBJECTS = (
    ("dein Bruder", "deine Schwester", "der Nachbar", "deine Mutter", "dein Vater", "die Lehrerin"),
    ("die Kinder", "deine Eltern", "die Schüler", "deine Freunde"),
)
DE_TIMES = (
    "gestern",
    "heute Morgen",
    "am Nachmittag",
    "nach dem Mittagessen",
    "am Wochenende",
    "letzte Woche",
    "gestern Abend",
    "nach der Schule",
    "nach der Arbeit",
    "am Sonntag",
)
DE_QUESTION_TIMES = ("gestern", "heute Morgen", "am Wochenende", "gestern Abend", "am Sonntag")
DE_AUX = {"h": ("hat", "haben"), "s": ("ist", "sind")}
DE_GROUPS = (
    (
        ("im Park", "im Garten", "am Fluss", "am See", "hinter der Schule"),
        (
            ("spielte", "spielten", "Fußball", "h", "gespielt"),
            ("machte", "machten", "ein Picknick", "h", "gemacht"),
            ("las", "lasen", "ein Buch", "h", "gelesen"),
            ("fütterte", "fütterten", "die Enten", "h", "gefüttert"),
            ("suchte", "suchten", "die Katze", "h", "gesucht"),
            ("pflückte", "pflückten", "Blumen", "h", "gepflückt"),
            ("malte", "malten", "ein Bild", "h", "gemalt"),
        ),
    ),
    (
        ("auf dem Markt", "in der Stadt", "im Supermarkt", "im Kaufhaus", "in einem kleinen Laden"),
        (
            ("kaufte", "kauften", "einen warmen Mantel", "h", "gekauft"),
            ("kaufte", "kauften", "frisches Brot", "h", "gekauft"),
            ("kaufte", "kauften", "neue Schuhe", "h", "gekauft"),
            ("fand", "fanden", "ein schönes Geschenk", "h", "gefunden"),
            ("suchte", "suchten", "eine neue Tasche", "h", "gesucht"),
            ("kaufte", "kauften", "einen kleinen Tisch", "h", "gekauft"),
            ("bezahlte", "bezahlten", "die Einkäufe", "h", "bezahlt"),
        ),
    ),
    (
        ("zu Hause", "in der Küche", "im Ferienhaus"),
        (
            ("kochte", "kochten", "eine warme Suppe", "h", "gekocht"),
            ("backte", "backten", "einen Kuchen", "h", "gebacken"),
            ("spülte", "spülten", "das Geschirr", "h", "gespült"),
            ("kochte", "kochten", "Tee", "h", "gekocht"),
            ("schnitt", "schnitten", "das Gemüse", "h", "geschnitten"),
            ("reparierte", "reparierten", "den alten Stuhl", "h", "repariert"),
        ),
    ),
    (
        ("in der Bibliothek", "im Wohnzimmer", "im Arbeitszimmer", "am Küchentisch"),
        (
            ("schrieb", "schrieben", "einen langen Brief", "h", "geschrieben"),
            ("las", "lasen", "die Zeitung", "h", "gelesen"),
            ("lernte", "lernten", "für die Prüfung", "h", "gelernt"),
            ("machte", "machten", "die Hausaufgaben", "h", "gemacht"),
            ("löste", "lösten", "ein schweres Rätsel", "h", "gelöst"),
            ("übte", "übten", "ein neues Lied", "h", "geübt"),
        ),
    ),
    (
        ("in die Stadt", "aufs Land", "an den Strand", "ins Dorf", "zum Markt", "nach Hause"),
        (
            ("ging", "gingen", "", "s", "gegangen"),
            ("fuhr", "fuhren", "mit dem Bus", "s", "gefahren"),
            ("fuhr", "fuhren", "mit dem Zug", "s", "gefahren"),
            ("fuhr", "fuhren", "mit dem Fahrrad", "s", "gefahren"),
            ("lief", "liefen", "", "s", "gelaufen"),
        ),
    ),
)

NL_SUBJECTS = (
    (
        "mijn broer",
        "mijn zus",
        "onze buurman",
        "mijn moeder",
        "mijn vader",
        "de oude man",
        "de jonge vrouw",
        "mijn vriendin",
        "de leraar",
        "mijn oom",
    ),
    ("de kinderen", "mijn ouders", "de leerlingen", "onze buren", "mijn vrienden", "mijn grootouders"),
)
NL_QUESTION_SUBJECTS = (
    ("je broer", "je zus", "de buurman", "je moeder", "je vader", "de leraar"),
    ("de kinderen", "je ouders", "de leerlingen", "je vrienden"),
)
NL_TIMES = (
    "gisteren",
    "vanochtend",
    "in de middag",
    "na de lunch",
    "op zaterdag",
    "vorige week",
    "gisteravond",
    "na school",
    "na het werk",
    "op zondag",
)
NL_QUESTION_TIMES = ("gisteren", "vanochtend", "op zaterdag", "gisteravond", "op zondag")
NL_AUX = {"h": ("heeft", "hebben"), "z": ("is", "zijn")}
NL_GROUPS = (
    (
        ("in het park", "in de tuin", "bij de rivier", "bij het meer", "achter de school"),
        (
            ("speelde", "speelden", "voetbal", "h", "gespeeld"),
            ("hield", "hielden", "een picknick", "h", "gehouden"),
            ("las", "lazen", "een boek", "h", "gelezen"),
            ("voerde", "voerden", "de eenden", "h", "gevoerd"),
            ("zocht", "zochten", "de kat", "h", "gezocht"),
            ("plukte", "plukten", "bloemen", "h", "geplukt"),
            ("maakte", "maakten", "een tekening", "h", "gemaakt"),
        ),
    ),
    (
        ("op de markt", "in de stad", "in de supermarkt", "in een kleine winkel", "in het winkelcentrum"),
        (
            ("kocht", "kochten", "een warme jas", "h", "gekocht"),
            ("kocht", "kochten", "vers brood", "h", "gekocht"),
            ("kocht", "kochten", "nieuwe schoenen", "h", "gekocht"),
            ("vond", "vonden", "een mooi cadeau", "h", "gevonden"),
            ("zocht", "zochten", "een nieuwe tas", "h", "gezocht"),
            ("kocht", "kochten", "een kleine tafel", "h", "gekocht"),
            ("betaalde", "betaalden", "de boodschappen", "h", "betaald"),
        ),
    ),
    (
        ("thuis", "in de keuken", "in het vakantiehuis"),
        (
            ("maakte", "maakten", "warme soep", "h", "gemaakt"),
            ("bakte", "bakten", "een taart", "h", "gebakken"),
            ("deed", "deden", "de afwas", "h", "gedaan"),
            ("zette", "zetten", "thee", "h", "gezet"),
            ("sneed", "sneden", "de groenten", "h", "gesneden"),
            ("repareerde", "repareerden", "de oude stoel", "h", "gerepareerd"),
        ),
    ),
    (
        ("in de bibliotheek", "in de woonkamer", "in de studeerkamer", "aan de keukentafel"),
        (
            ("schreef", "schreven", "een lange brief", "h", "geschreven"),
            ("las", "lazen", "de krant", "h", "gelezen"),
            ("studeerde", "studeerden", "voor de toets", "h", "gestudeerd"),
            ("maakte", "maakten", "het huiswerk", "h", "gemaakt"),
            ("oefende", "oefenden", "een nieuw lied", "h", "geoefend"),
            ("tekende", "tekenden", "een kaart", "h", "getekend"),
        ),
    ),
    (
        ("naar de stad", "naar het dorp", "naar het strand", "naar het park", "naar de markt", "naar huis"),
        (
            ("liep", "liepen", "", "z", "gelopen"),
            ("ging", "gingen", "met de bus", "z", "gegaan"),
            ("ging", "gingen", "met de trein", "z", "gegaan"),
            ("fietste", "fietsten", "", "z", "gefietst"),
            ("reed", "reden", "met de auto", "z", "gereden"),
        ),
    ),
)


def _v2(subjects, question_subjects, times, question_times, aux, groups) -> tuple[_Template, ...]:
    out = []
    for places, vps in groups:
        for cls in (0, 1):
            v = tuple((vp[cls], vp[2], aux[vp[3]][cls], vp[4]) for vp in vps)
            out += [
                _t("{s} {v[0]} {t} {v[1]} {p}.", s=subjects[cls], v=v, t=times, p=places),
                _t("{t} {v[0]} {s} {v[1]} {p}.", t=times, v=v, s=subjects[cls], p=places),
                _t("{v[2]} {s} {t} {v[1]} {p} {v[3]}?", v=v, s=question_subjects[cls], t=question_times, p=places),
            ]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# French and Italian: compound past with "avoir"/"avere" (participle phrases, aux by number)
# --------------------------------------------------------------------------------------------

FR_SUBJECTS = (
    (
        "ma sœur",
        "mon frère",
        "ma mère",
        "mon père",
        "notre voisin",
        "le vieux monsieur",
        "la jeune femme",
        "mon meilleur ami",
        "ma grand-mère",
        "le professeur",
    ),
    ("les enfants", "mes parents", "les élèves", "nos voisins", "mes amis", "mes grands-parents"),
)
FR_QUESTION_SUBJECTS = (  # all start with a consonant, so "est-ce que" never elides
    ("ta sœur", "ton frère", "ta mère", "ton père", "le voisin", "le professeur"),
    ("les enfants", "tes parents", "les élèves", "tes amis"),
)
FR_TIMES = (
    "hier",
    "ce matin",
    "cet après-midi",
    "après le déjeuner",
    "samedi dernier",
    "la semaine dernière",
    "hier soir",
    "après l'école",
    "après le travail",
    "dimanche",
)
FR_QUESTION_TIMES = ("hier", "ce matin", "hier soir", "samedi dernier", "dimanche")
FR_GROUPS = (
    (
        ("au parc", "dans le jardin", "au bord de la rivière", "près du lac", "derrière l'école"),
        (
            "joué au ballon",
            "fait un pique-nique",
            "lu un livre",
            "nourri les canards",
            "cherché le chat",
            "cueilli des fleurs",
            "promené le chien",
        ),
    ),
    (
        ("au marché", "en ville", "au supermarché", "dans une petite boutique", "au centre commercial"),
        (
            "acheté un manteau chaud",
            "acheté du pain frais",
            "acheté de nouvelles chaussures",
            "trouvé un joli cadeau",
            "cherché un nouveau sac",
            "acheté une petite table",
            "payé les courses",
        ),
    ),
    (
        ("à la maison", "dans la cuisine", "dans la maison de vacances"),
        (
            "préparé une soupe chaude",
            "fait un gâteau",
            "fait la vaisselle",
            "préparé du thé",
            "coupé les légumes",
            "réparé la vieille chaise",
        ),
    ),
    (
        ("à la bibliothèque", "dans le salon", "dans le bureau", "à la table de la cuisine"),
        (
            "écrit une longue lettre",
            "lu le journal",
            "révisé pour l'examen",
            "fait les devoirs",
            "appris une nouvelle chanson",
            "dessiné une carte",
        ),
    ),
    (
        ("jusqu'au parc", "jusqu'au village", "jusqu'à la plage", "jusqu'au marché", "jusqu'à la rivière"),
        ("marché", "couru", "pris le bus", "pris le train", "roulé à vélo"),
    ),
)

IT_SUBJECTS = (
    (
        "mia sorella",
        "mio fratello",
        "mia madre",
        "mio padre",
        "il nostro vicino",
        "il vecchio signore",
        "la ragazza",
        "il mio migliore amico",
        "mia nonna",
        "il maestro",
    ),
    ("i bambini", "i miei genitori", "gli studenti", "i nostri vicini", "i miei amici", "i miei nonni"),
)
IT_QUESTION_SUBJECTS = (
    ("tua sorella", "tuo fratello", "tua madre", "tuo padre", "il vicino", "il maestro"),
    ("i bambini", "i tuoi genitori", "gli studenti", "i tuoi amici"),
)
IT_TIMES = (
    "ieri",
    "stamattina",
    "nel pomeriggio",
    "dopo pranzo",
    "lo scorso fine settimana",
    "la settimana scorsa",
    "ieri sera",
    "dopo la scuola",
    "dopo il lavoro",
    "domenica",
)
IT_QUESTION_TIMES = ("ieri", "stamattina", "ieri sera", "dopo pranzo", "domenica")
IT_GROUPS = (
    (
        ("al parco", "in giardino", "vicino al fiume", "vicino al lago", "dietro la scuola"),
        (
            "giocato a calcio",
            "fatto un picnic",
            "letto un libro",
            "dato da mangiare alle anatre",
            "cercato il gatto",
            "raccolto dei fiori",
            "portato a spasso il cane",
        ),
    ),
    (
        ("al mercato", "in città", "al supermercato", "in un piccolo negozio", "al centro commerciale"),
        (
            "comprato un cappotto caldo",
            "comprato del pane fresco",
            "comprato delle scarpe nuove",
            "trovato un bel regalo",
            "cercato una borsa nuova",
            "comprato un tavolino",
            "pagato la spesa",
        ),
    ),
    (
        ("a casa", "in cucina", "nella casa di campagna"),
        (
            "preparato una zuppa calda",
            "fatto una torta",
            "lavato i piatti",
            "preparato il tè",
            "tagliato le verdure",
            "riparato la vecchia sedia",
        ),
    ),
    (
        ("in biblioteca", "in salotto", "nello studio", "al tavolo della cucina"),
        (
            "scritto una lunga lettera",
            "letto il giornale",
            "studiato per l'esame",
            "fatto i compiti",
            "imparato una nuova canzone",
            "disegnato una mappa",
        ),
    ),
    (
        ("in centro", "alla stazione", "al bar", "in piazza"),
        (
            "incontrato un vecchio amico",
            "aspettato l'autobus",
            "bevuto un caffè",
            "fatto delle foto",
            "chiesto indicazioni",
            "comprato il giornale",
        ),
    ),
)


def _compound_past(
    subjects, question_subjects, times, question_times, aux, groups, question_prefix: str
) -> tuple[_Template, ...]:
    out = []
    for places, participles in groups:
        for cls in (0, 1):
            a = aux[cls]
            out += [
                _t("{s} " + a + " {v} {p} {t}.", s=subjects[cls], v=participles, p=places, t=times),
                _t("{t}, {s} " + a + " {v} {p}.", t=times, s=subjects[cls], v=participles, p=places),
                _t(
                    question_prefix + "{s} " + a + " {v} {p} {t}?",
                    s=question_subjects[cls],
                    v=participles,
                    p=places,
                    t=question_times,
                ),
            ]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Spanish and Portuguese: simple past; verb phrase = (singular, plural)
# --------------------------------------------------------------------------------------------

ES_SUBJECTS = (
    (
        "mi hermana",
        "mi hermano",
        "mi madre",
        "mi padre",
        "nuestro vecino",
        "el anciano",
        "la joven",
        "mi mejor amigo",
        "mi abuela",
        "el profesor",
    ),
    ("los niños", "mis padres", "los alumnos", "nuestros vecinos", "mis amigos", "mis abuelos"),
)
ES_QUESTION_SUBJECTS = (
    ("tu hermana", "tu hermano", "tu madre", "tu padre", "el vecino", "el profesor"),
    ("los niños", "tus padres", "los alumnos", "tus amigos"),
)
ES_TIMES = (
    "ayer",
    "esta mañana",
    "por la tarde",
    "después del almuerzo",
    "el fin de semana pasado",
    "la semana pasada",
    "anoche",
    "después de clase",
    "después del trabajo",
    "el domingo",
)
ES_QUESTION_TIMES = ("ayer", "esta mañana", "anoche", "el domingo", "por la tarde")
ES_GROUPS = (
    (
        ("en el parque", "en el jardín", "junto al río", "cerca del lago", "detrás de la escuela"),
        (
            ("jugó al fútbol", "jugaron al fútbol"),
            ("hizo un picnic", "hicieron un picnic"),
            ("leyó un libro", "leyeron un libro"),
            ("dio de comer a los patos", "dieron de comer a los patos"),
            ("buscó al gato", "buscaron al gato"),
            ("recogió flores", "recogieron flores"),
            ("paseó al perro", "pasearon al perro"),
        ),
    ),
    (
        ("en el mercado", "en la ciudad", "en el supermercado", "en una tienda pequeña", "en el centro comercial"),
        (
            ("compró un abrigo de invierno", "compraron un abrigo de invierno"),
            ("compró pan fresco", "compraron pan fresco"),
            ("compró zapatos nuevos", "compraron zapatos nuevos"),
            ("encontró un regalo bonito", "encontraron un regalo bonito"),
            ("buscó una bolsa nueva", "buscaron una bolsa nueva"),
            ("compró una mesa pequeña", "compraron una mesa pequeña"),
            ("pagó la compra", "pagaron la compra"),
        ),
    ),
    (
        ("en casa", "en la cocina", "en la casa de campo"),
        (
            ("preparó una sopa caliente", "prepararon una sopa caliente"),
            ("hizo un pastel", "hicieron un pastel"),
            ("lavó los platos", "lavaron los platos"),
            ("preparó un té", "prepararon un té"),
            ("cortó las verduras", "cortaron las verduras"),
            ("arregló la silla vieja", "arreglaron la silla vieja"),
        ),
    ),
    (
        ("en la biblioteca", "en el salón", "en su habitación", "en la mesa de la cocina"),
        (
            ("escribió una carta larga", "escribieron una carta larga"),
            ("leyó el periódico", "leyeron el periódico"),
            ("estudió para el examen", "estudiaron para el examen"),
            ("hizo los deberes", "hicieron los deberes"),
            ("aprendió una canción nueva", "aprendieron una canción nueva"),
            ("dibujó un mapa", "dibujaron un mapa"),
        ),
    ),
    (
        ("a la ciudad", "al pueblo", "a la playa", "al parque", "al mercado", "a casa"),
        (
            ("caminó", "caminaron"),
            ("fue en autobús", "fueron en autobús"),
            ("fue en tren", "fueron en tren"),
            ("fue en bicicleta", "fueron en bicicleta"),
            ("corrió", "corrieron"),
            ("volvió", "volvieron"),
        ),
    ),
)

PT_SUBJECTS = (  # European Portuguese (espeak-ng "pt" is the Portugal voice)
    (
        "a minha irmã",
        "o meu irmão",
        "a minha mãe",
        "o meu pai",
        "o nosso vizinho",
        "o senhor idoso",
        "a jovem",
        "o meu melhor amigo",
        "a minha avó",
        "o professor",
    ),
    ("as crianças", "os meus pais", "os alunos", "os nossos vizinhos", "os meus amigos", "os meus avós"),
)
PT_QUESTION_SUBJECTS = (
    ("a tua irmã", "o teu irmão", "a tua mãe", "o teu pai", "o vizinho", "o professor"),
    ("as crianças", "os teus pais", "os alunos", "os teus amigos"),
)
PT_TIMES = (
    "ontem",
    "esta manhã",
    "à tarde",
    "depois do almoço",
    "no fim de semana passado",
    "na semana passada",
    "ontem à noite",
    "depois da escola",
    "depois do trabalho",
    "no domingo",
)
PT_QUESTION_TIMES = ("ontem", "esta manhã", "ontem à noite", "no domingo", "à tarde")
PT_GROUPS = (
    (
        ("no parque", "no jardim", "junto ao rio", "perto do lago", "atrás da escola"),
        (
            ("jogou futebol", "jogaram futebol"),
            ("fez um piquenique", "fizeram um piquenique"),
            ("leu um livro", "leram um livro"),
            ("deu comida aos patos", "deram comida aos patos"),
            ("procurou o gato", "procuraram o gato"),
            ("apanhou flores", "apanharam flores"),
            ("passeou o cão", "passearam o cão"),
        ),
    ),
    (
        ("no mercado", "na cidade", "no supermercado", "numa pequena loja", "no centro comercial"),
        (
            ("comprou um casaco quente", "compraram um casaco quente"),
            ("comprou pão fresco", "compraram pão fresco"),
            ("comprou sapatos novos", "compraram sapatos novos"),
            ("encontrou um presente bonito", "encontraram um presente bonito"),
            ("procurou uma mala nova", "procuraram uma mala nova"),
            ("comprou uma mesa pequena", "compraram uma mesa pequena"),
            ("pagou as compras", "pagaram as compras"),
        ),
    ),
    (
        ("em casa", "na cozinha", "na casa de campo"),
        (
            ("fez uma sopa quente", "fizeram uma sopa quente"),
            ("fez um bolo", "fizeram um bolo"),
            ("lavou a loiça", "lavaram a loiça"),
            ("preparou um chá", "prepararam um chá"),
            ("cortou os legumes", "cortaram os legumes"),
            ("arranjou a cadeira velha", "arranjaram a cadeira velha"),
        ),
    ),
    (
        ("na biblioteca", "na sala", "no quarto", "na mesa da cozinha"),
        (
            ("escreveu uma carta longa", "escreveram uma carta longa"),
            ("leu o jornal", "leram o jornal"),
            ("estudou para o exame", "estudaram para o exame"),
            ("fez os trabalhos de casa", "fizeram os trabalhos de casa"),
            ("aprendeu uma canção nova", "aprenderam uma canção nova"),
            ("desenhou um mapa", "desenharam um mapa"),
        ),
    ),
    (
        ("à cidade", "à aldeia", "à praia", "ao parque", "ao mercado"),
        (
            ("foi a pé", "foram a pé"),
            ("foi de autocarro", "foram de autocarro"),
            ("foi de comboio", "foram de comboio"),
            ("foi de bicicleta", "foram de bicicleta"),
            ("voltou", "voltaram"),
        ),
    ),
)


def _simple_past(
    subjects, question_subjects, times, question_times, groups, question_open: str
) -> tuple[_Template, ...]:
    out = []
    for places, vps in groups:
        for cls in (0, 1):
            v = _forms(vps, cls)
            out += [
                _t("{s} {v} {p} {t}.", s=subjects[cls], v=v, p=places, t=times),
                _t("{t}, {s} {v} {p}.", t=times, s=subjects[cls], v=v, p=places),
                _t(question_open + "{s} {v} {p} {t}?", s=question_subjects[cls], v=v, p=places, t=question_times),
            ]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Polish: past tense agrees in gender and number:
# (masculine sg, feminine sg, masculine-personal pl, other pl)
# --------------------------------------------------------------------------------------------

PL_SUBJECTS = (
    ("mój brat", "mój tata", "nasz sąsiad", "dziadek", "nauczyciel", "mój kolega", "starszy pan"),
    ("moja siostra", "moja mama", "nasza sąsiadka", "babcia", "nauczycielka", "moja koleżanka"),
    ("moi rodzice", "studenci", "chłopcy", "moi przyjaciele", "nasi sąsiedzi"),
    ("dzieci", "dziewczynki", "moje siostry", "moje koleżanki"),
)
PL_QUESTION_SUBJECTS = (
    ("twój brat", "twój tata", "sąsiad", "nauczyciel"),
    ("twoja siostra", "twoja mama", "sąsiadka", "nauczycielka"),
    ("twoi rodzice", "studenci", "twoi przyjaciele"),
    ("dzieci", "twoje siostry"),
)
PL_TIMES = (
    "wczoraj",
    "dziś rano",
    "po południu",
    "po obiedzie",
    "w weekend",
    "w zeszłym tygodniu",
    "wczoraj wieczorem",
    "po szkole",
    "po pracy",
    "w niedzielę",
)
PL_QUESTION_TIMES = ("wczoraj", "dziś rano", "po obiedzie", "w weekend", "w niedzielę")


def _pl(stem_m: str, stem_f: str, stem_v: str, stem_o: str, rest: str) -> tuple[str, str, str, str]:
    return tuple(f"{stem} {rest}".strip() for stem in (stem_m, stem_f, stem_v, stem_o))


def _pl_regular(stem: str, rest: str = "") -> tuple[str, str, str, str]:
    """Verbs with a stem ending in a vowel + ł: ``grał/grała/grali/grały``."""
    return _pl(stem + "ł", stem + "ła", stem + "li", stem + "ły", rest)


PL_GROUPS = (
    (
        ("w parku", "w ogrodzie", "nad rzeką", "nad jeziorem", "za szkołą"),
        (
            _pl_regular("gra", "w piłkę"),
            _pl("zjadł", "zjadła", "zjedli", "zjadły", "kanapki"),
            _pl_regular("czyta", "książkę"),
            _pl_regular("karmi", "kaczki"),
            _pl_regular("szuka", "kota"),
            _pl_regular("zbiera", "kwiaty"),
            _pl_regular("spacerowa", "z psem"),
        ),
    ),
    (
        ("na targu", "w mieście", "w supermarkecie", "w małym sklepie", "w centrum handlowym"),
        (
            _pl_regular("kupi", "ciepły płaszcz"),
            _pl_regular("kupi", "świeży chleb"),
            _pl_regular("kupi", "nowe buty"),
            _pl("znalazł", "znalazła", "znaleźli", "znalazły", "ładny prezent"),
            _pl_regular("szuka", "nowej torby"),
            _pl_regular("kupi", "mały stolik"),
            _pl_regular("zapłaci", "za zakupy"),
        ),
    ),
    (
        ("w domu", "w kuchni", "w domku letniskowym"),
        (
            _pl_regular("ugotowa", "gorącą zupę"),
            _pl("upiekł", "upiekła", "upiekli", "upiekły", "ciasto"),
            _pl_regular("umy", "naczynia"),
            _pl_regular("zrobi", "herbatę"),
            _pl_regular("pokroi", "warzywa"),
            _pl_regular("naprawi", "stare krzesło"),
        ),
    ),
    (
        ("w bibliotece", "w salonie", "w pokoju", "przy kuchennym stole"),
        (
            _pl_regular("napisa", "długi list"),
            _pl_regular("czyta", "gazetę"),
            _pl_regular("uczy", "się do egzaminu"),
            _pl_regular("odrobi", "lekcje"),
            _pl_regular("nauczy", "się nowej piosenki"),
            _pl_regular("narysowa", "mapę"),
        ),
    ),
    (
        ("do miasta", "nad morze", "na plażę", "do parku", "na targ"),
        (
            _pl("poszedł", "poszła", "poszli", "poszły", ""),
            _pl_regular("pojecha", "autobusem"),
            _pl_regular("pojecha", "pociągiem"),
            _pl_regular("pojecha", "rowerem"),
            _pl("pobiegł", "pobiegła", "pobiegli", "pobiegły", ""),
        ),
    ),
)


def _polish() -> tuple[_Template, ...]:
    out = []
    for places, vps in PL_GROUPS:
        for cls in range(4):
            v = _forms(vps, cls)
            out += [
                _t("{s} {t} {v} {p}.", s=PL_SUBJECTS[cls], t=PL_TIMES, v=v, p=places),
                _t("{t} {s} {v} {p}.", t=PL_TIMES, s=PL_SUBJECTS[cls], v=v, p=places),
                _t("czy {s} {t} {v} {p}?", s=PL_QUESTION_SUBJECTS[cls], t=PL_QUESTION_TIMES, v=v, p=places),
            ]
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Mandarin Chinese (simplified characters), Korean (polite -어요 style), Japanese (kana only).
# No agreement; each group is (places, verb phrases, travel?) where a travel group's "verb phrase"
# is the means of transport and its "place" carries the destination and the verb.
# --------------------------------------------------------------------------------------------

ZH_SUBJECTS = (
    "我妹妹",
    "我哥哥",
    "我妈妈",
    "我爸爸",
    "我们的邻居",
    "那位老人",
    "那个年轻人",
    "我的好朋友",
    "我奶奶",
    "老师",
    "孩子们",
    "我的父母",
    "学生们",
    "我们全家",
    "我的同学们",
)
ZH_QUESTION_SUBJECTS = (
    "你妹妹",
    "你哥哥",
    "你妈妈",
    "你爸爸",
    "孩子们",
    "你的父母",
    "学生们",
    "老师",
    "你的朋友",
)
ZH_TIMES = (
    "昨天",
    "今天早上",
    "下午",
    "午饭后",
    "上个周末",
    "上个星期",
    "昨天晚上",
    "放学后",
    "下班后",
    "星期天",
)
ZH_QUESTION_TIMES = ("昨天", "今天早上", "昨天晚上", "上个周末", "星期天")
ZH_GROUPS = (
    (
        ("在公园里", "在花园里", "在河边", "在湖边", "在学校后面"),
        ("踢了一场足球", "野餐了", "看了一本书", "喂了鸭子", "找到了那只小猫", "摘了一些花", "遛狗", "画了一幅画"),
        False,
    ),
    (
        ("在市场上", "在城里", "在超市", "在一家小商店", "在商场"),
        (
            "买了一件暖和的外套",
            "买了新鲜的面包",
            "买了一双新鞋",
            "找到了一件漂亮的礼物",
            "买了一张小桌子",
            "买了一些水果",
            "挑了一个新书包",
        ),
        False,
    ),
    (
        ("在家里", "在厨房里", "在朋友家"),
        ("做了一锅热汤", "做了一个蛋糕", "洗了碗", "泡了一壶茶", "切了蔬菜", "修好了那把旧椅子", "包了饺子"),
        False,
    ),
    (
        ("在图书馆", "在客厅里", "在书房里", "在餐桌旁"),
        ("写了一封长信", "看了报纸", "复习了功课", "做完了作业", "学了一首新歌", "画了一张地图"),
        False,
    ),
    (
        ("城里", "乡下", "海边", "公园", "市场", "图书馆"),
        ("坐公交车去了", "坐火车去了", "骑自行车去了", "走路去了", "跑步去了"),
        True,
    ),
)

KO_SUBJECTS = (
    "제 여동생은",
    "제 남동생은",
    "우리 어머니는",
    "우리 아버지는",
    "옆집 아저씨는",
    "할머니는",
    "할아버지는",
    "선생님은",
    "제 친구는",
    "아이들은",
    "학생들은",
    "우리 가족은",
)
KO_QUESTION_SUBJECTS = ("동생은", "아이들은", "학생들은", "선생님은", "친구는", "어머니는", "아버지는")
KO_TIMES = (
    "어제",
    "오늘 아침",
    "오후에",
    "점심을 먹고",
    "지난 주말에",
    "지난주에",
    "어젯밤에",
    "방과 후에",
    "퇴근 후에",
    "일요일에",
)
KO_QUESTION_TIMES = ("어제", "오늘 아침", "지난 주말에", "어젯밤에", "일요일에")
KO_GROUPS = (
    (
        ("공원에서", "정원에서", "강가에서", "호숫가에서", "학교 뒤에서"),
        (
            "축구를 했어요",
            "소풍을 즐겼어요",
            "책을 읽었어요",
            "오리에게 먹이를 줬어요",
            "고양이를 찾았어요",
            "꽃을 땄어요",
            "개를 산책시켰어요",
            "그림을 그렸어요",
        ),
        False,
    ),
    (
        ("시장에서", "시내에서", "슈퍼마켓에서", "작은 가게에서", "백화점에서"),
        (
            "따뜻한 코트를 샀어요",
            "신선한 빵을 샀어요",
            "새 신발을 샀어요",
            "예쁜 선물을 찾았어요",
            "새 가방을 골랐어요",
            "작은 탁자를 샀어요",
            "과일을 샀어요",
        ),
        False,
    ),
    (
        ("집에서", "부엌에서", "친구 집에서"),
        (
            "따뜻한 국을 끓였어요",
            "케이크를 만들었어요",
            "설거지를 했어요",
            "차를 끓였어요",
            "채소를 썰었어요",
            "낡은 의자를 고쳤어요",
            "김밥을 만들었어요",
        ),
        False,
    ),
    (
        ("도서관에서", "거실에서", "방에서", "식탁에서"),
        (
            "긴 편지를 썼어요",
            "신문을 읽었어요",
            "시험 공부를 했어요",
            "숙제를 끝냈어요",
            "새 노래를 배웠어요",
            "지도를 그렸어요",
        ),
        False,
    ),
    (
        ("시내에 갔어요", "시골에 갔어요", "바닷가에 갔어요", "공원에 갔어요", "시장에 갔어요", "도서관에 갔어요"),
        ("버스를 타고", "기차를 타고", "자전거를 타고", "걸어서"),
        True,
    ),
)

JA_SUBJECTS = (
    "いもうとが",
    "おとうとが",
    "ははが",
    "ちちが",
    "となりの ひとが",
    "おばあさんが",
    "おじいさんが",
    "せんせいが",
    "ともだちが",
    "こどもたちが",
    "がくせいたちが",
    "あねが",
    "あにが",
)
JA_QUESTION_SUBJECTS = (
    "おかあさんが",
    "おとうさんが",
    "こどもたちが",
    "せんせいが",
    "ともだちが",
    "がくせいたちが",
)
JA_TIMES = (
    "きのう",
    "けさ",
    "ごご",
    "ひるごはんの あとで",
    "せんしゅうの どようびに",
    "せんしゅう",
    "きのうの よる",
    "ほうかごに",
    "しごとの あとで",
    "にちようびに",
)
JA_QUESTION_TIMES = ("きのう", "けさ", "きのうの よる", "にちようびに", "せんしゅう")
JA_GROUPS = (
    (
        ("こうえんで", "にわで", "かわの そばで", "みずうみの ほとりで", "がっこうの うらで"),
        (
            "サッカーを しました",
            "おべんとうを たべました",
            "ほんを よみました",
            "あひるに えさを あげました",
            "ねこを さがしました",
            "はなを つみました",
            "いぬの さんぽを しました",
            "えを かきました",
        ),
        False,
    ),
    (
        ("いちばで", "まちで", "スーパーで", "ちいさな みせで", "デパートで"),
        (
            "あたたかい コートを かいました",
            "やきたての パンを かいました",
            "あたらしい くつを かいました",
            "すてきな プレゼントを みつけました",
            "あたらしい かばんを えらびました",
            "ちいさな テーブルを かいました",
            "くだものを かいました",
        ),
        False,
    ),
    (
        ("いえで", "だいどころで", "ともだちの いえで"),
        (
            "あたたかい スープを つくりました",
            "ケーキを やきました",
            "おさらを あらいました",
            "おちゃを いれました",
            "やさいを きりました",
            "ふるい いすを なおしました",
            "カレーを つくりました",
        ),
        False,
    ),
    (
        ("としょかんで", "いまで", "へやで", "テーブルで"),
        (
            "ながい てがみを かきました",
            "しんぶんを よみました",
            "テストの べんきょうを しました",
            "しゅくだいを おわらせました",
            "あたらしい うたを ならいました",
            "ちずを かきました",
        ),
        False,
    ),
    (
        (
            "まちに いきました",
            "いなかに いきました",
            "うみに いきました",
            "こうえんに いきました",
            "いちばに いきました",
            "としょかんに いきました",
        ),
        ("バスで", "でんしゃで", "じてんしゃで", "あるいて"),
        True,
    ),
)


def _east_asian(groups, subjects, question_subjects, times, question_times, patterns) -> tuple[_Template, ...]:
    """``patterns``: (statement, fronted statement, question) for normal groups, then for travel."""
    out = []
    for places, vps, travel in groups:
        for pattern, subj, tim in zip(
            patterns[1 if travel else 0],
            (subjects, subjects, question_subjects),
            (times, times, question_times),
            strict=True,
        ):
            out.append(_t(pattern, s=subj, t=tim, p=places, v=vps))
    return tuple(out)


def _chinese() -> tuple[_Template, ...]:
    return _east_asian(
        ZH_GROUPS,
        ZH_SUBJECTS,
        ZH_QUESTION_SUBJECTS,
        ZH_TIMES,
        ZH_QUESTION_TIMES,
        (
            ("{s}{t}{p}{v}。", "{t}，{s}{p}{v}。", "{s}{t}{p}{v}吗？"),
            ("{s}{t}{v}{p}。", "{t}，{s}{v}{p}。", "{s}{t}{v}{p}吗？"),
        ),
    )


def _korean() -> tuple[_Template, ...]:
    return _east_asian(
        KO_GROUPS,
        KO_SUBJECTS,
        KO_QUESTION_SUBJECTS,
        KO_TIMES,
        KO_QUESTION_TIMES,
        (
            ("{s} {t} {p} {v}.", "{t} {s} {p} {v}.", "{s} {t} {p} {v}?"),
            ("{s} {t} {v} {p}.", "{t} {s} {v} {p}.", "{s} {t} {v} {p}?"),
        ),
    )


def _japanese() -> tuple[_Template, ...]:
    return _east_asian(
        JA_GROUPS,
        JA_SUBJECTS,
        JA_QUESTION_SUBJECTS,
        JA_TIMES,
        JA_QUESTION_TIMES,
        (
            ("{t} {s} {p} {v}。", "{s} {t} {p} {v}。", "{t} {s} {p} {v}か？"),
            ("{t} {s} {v} {p}。", "{s} {t} {v} {p}。", "{t} {s} {v} {p}か？"),
        ),
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

_BUILDERS = {
    "en": _english,
    "de": lambda: _v2(DE_SUBJECTS, DE_QUESTION_SUBJECTS, DE_TIMES, DE_QUESTION_TIMES, DE_AUX, DE_GROUPS),
    "nl": lambda: _v2(NL_SUBJECTS, NL_QUESTION_SUBJECTS, NL_TIMES, NL_QUESTION_TIMES, NL_AUX, NL_GROUPS),
    "fr": lambda: _compound_past(
        FR_SUBJECTS, FR_QUESTION_SUBJECTS, FR_TIMES, FR_QUESTION_TIMES, ("a", "ont"), FR_GROUPS, "est-ce que "
    ),
    "it": lambda: _compound_past(
        IT_SUBJECTS, IT_QUESTION_SUBJECTS, IT_TIMES, IT_QUESTION_TIMES, ("ha", "hanno"), IT_GROUPS, ""
    ),
    "es": lambda: _simple_past(ES_SUBJECTS, ES_QUESTION_SUBJECTS, ES_TIMES, ES_QUESTION_TIMES, ES_GROUPS, "¿"),
    "pt": lambda: _simple_past(PT_SUBJECTS, PT_QUESTION_SUBJECTS, PT_TIMES, PT_QUESTION_TIMES, PT_GROUPS, ""),
    "pl": _polish,
    "zh": _chinese,
    "ja": _japanese,
    "ko": _korean,
}
assert set(_BUILDERS) == set(LANGUAGES)


@cache
def _grammar(language: str) -> tuple[tuple[_Template, ...], tuple[int, ...]]:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(sorted(LANGUAGES))}")
    templates = _BUILDERS[language]()
    ends, total = [], 0
    for template in templates:
        total += template.size
        ends.append(total)
    return templates, tuple(ends)


def sentence_pool_size(language: str) -> int:
    """How many distinct sentences the grammar for ``language`` can produce."""
    return _grammar(language)[1][-1]


def _sentence(language: str, index: int) -> str:
    templates, ends = _grammar(language)
    k = bisect.bisect_right(ends, index)
    start = ends[k - 1] if k else 0
    return templates[k].render(index - start)


def generate_sentences(language: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences in ``language``, deterministic for (language, n, seed)."""
    pool = sentence_pool_size(language)  # raises ValueError for an unknown language
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if n > pool:
        raise ValueError(
            f"asked for {n} sentences but the {LANGUAGES[language].name} grammar can produce "
            f"at most {pool} distinct sentences"
        )
    digest = hashlib.sha256(f"tts-corpus-text:{language}:{seed}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:16], "big"))
    return [_sentence(language, i) for i in rng.sample(range(pool), n)]
