"""Generated truth: contacts with realistic duplicates and the true clusters, so the
quality of matching rules can be measured."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from crmkit.dedupe._normalise import _nicknames
from crmkit.records import Contact

__all__ = ["GeneratedContacts", "generate_duplicates", "pair_quality"]

Array = np.ndarray[Any, Any]

_FIRST = """james mary robert patricia john jennifer michael linda william elizabeth david
barbara richard susan joseph jessica thomas sarah charles karen christopher nancy daniel
lisa matthew margaret anthony betty mark sandra donald ashley steven kimberly paul emily
andrew donna joshua michelle kenneth carol kevin amanda brian melissa george deborah
timothy stephanie ronald rebecca edward sharon jason laura jeffrey cynthia ryan kathleen
jacob amy gary angela nicholas shirley eric anna jonathan brenda stephen pamela larry emma
justin nicole scott helen brandon samantha benjamin katherine samuel christine gregory
debra alexander rachel frank carolyn patrick janet raymond catherine jack maria dennis
heather jerry diane tyler ruth aaron julie jose olivia adam joyce nathan virginia henry
victoria douglas kelly zachary lauren peter christina kyle joan noah evelyn ethan judith
jeremy megan walter andrea christian cheryl keith hannah roger jacqueline terry martha
gerald gloria harold teresa sean ann austin sara carl madison arthur frances lawrence
kathryn dylan janice jesse jean jordan abigail bryan alice billy judy joe sophia bruce
grace gabriel denise logan amber albert doris willie marilyn alan danielle juan beverly
wayne isabella elijah theresa randy diana roy natalie vincent brittany ralph charlotte
eugene marie russell kayla bobby alexis mason lori philip alexandra""".split()  # noqa: SIM905

_LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez
hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez
thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright
scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell
carter roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart
morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly
howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray mendoza
ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez powell
jenkins perry russell sullivan bell coleman butler henderson barnes gonzales fisher
vasquez simmons romero jordan patterson alexander hamilton graham reynolds griffin wallace
moreno west cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford
castro marshall owens harrison fernandez mcdonald woods washington kennedy wells vargas
henry chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon
mendez silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson
boyd rose stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols
stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce
vazquez hansen peters santos hart bradley knight elliott cunningham duncan armstrong
hudson carroll lane riley andrews alvarado ray delgado berry perkins hoffman johnston
matthews pena richards contreras willis carpenter lawrence sandoval guerrero george
chapman rios estrada ortega watkins greene nunez wheeler valdez harper burke larson
santiago maldonado morrison franklin carlson austin dominguez carr lawson jacobs obrien
lynch singh vega bishop montgomery oliver jensen harvey williamson gilbert dean sims
espinoza howell li wong reid hanson le mccoy garrett burton fuller wang weber welch rojas
lucas marquez fields park yang little banks padilla day walsh bowman schultz luna fowler
mejia davidson acosta brewer may holland juarez newman pearson curtis cortez douglas
schneider joseph barrett navarro figueroa keller avila wade molina stanley hopkins
campos barnett bates chambers caldwell beck lambert miranda byrd craig ayala lowe frazier
powers neal leonard gregory carrillo sutton fleming rhodes shelton schwartz norris jennings
watts duran walters cohen mcdaniel moran parks steele vaughn becker holt deleon barker terry
hale leon hail benson haynes horton miles lyons pham graves bush thornton wolfe warner
cabrera mckinney mann zimmerman dawson lara fletcher page mccarthy love robles cervantes
solis erickson reeves chang klein salinas fuentes baldwin daniel simon velasquez hardy
higgins aguirre lin cummings chandler sharp barber bowen ochoa dennis robbins liu ramsey
francis griffith paul blair oconnor cardenas pacheco cross calderon quinn moss swanson
chan rivas khan rodgers serrano fitzgerald rosales stevenson christensen manning gill
curry mclaughlin harmon mcgee gross doyle garner newton burgess reese walton blake trujillo
adkins brady goodman roman webster goodwin fischer huang potts wolf""".split()  # noqa: SIM905

_WORDS = """apex blue bright cedar delta east ever first gold green harbor high iron key lake
lion maple metro north nova oak ocean peak pine prime quest red river rock sage silver
sky solar star stone summit sun true union valley vista west wind""".split()  # noqa: SIM905
_KINDS = """systems labs group partners logistics foods energy health media software capital
works solutions analytics robotics motors designs holdings ventures networks""".split()  # noqa: SIM905
_TLDS = ["com", "com", "com", "io", "co.uk", "de", "com.au", "net", "fr"]
_FREE = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]
_PHONE_FORMATS = (
    "+1 {a} {b} {c}",
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1{a}{b}{c}",
    "1-{a}-{b}-{c}",
)


@attrs.frozen(kw_only=True)
class GeneratedContacts:
    """Contacts as columns (``id``, ``first_name``, ``last_name``, ``email``, ``phone``,
    ``account_id``; ``""`` where missing) and ``truth``: the true person of each row, so
    rows with equal truth are duplicates."""

    columns: dict[str, Array]
    truth: Array

    def __len__(self) -> int:
        return int(self.truth.size)

    def records(self) -> list[Contact]:
        """The rows as :class:`~crmkit.records.Contact` records (for small sizes)."""
        cols = self.columns
        return [
            Contact(
                id=str(i),
                first_name=str(cols["first_name"][k]) or None,
                last_name=str(cols["last_name"][k]) or None,
                email=str(cols["email"][k]) or None,
                phone=str(cols["phone"][k]) or None,
                account_id=str(cols["account_id"][k]) or None,
            )
            for k, i in enumerate(cols["id"].tolist())
        ]

    def true_clusters(self) -> list[tuple[str, ...]]:
        """The groups of ids that are one person (two or more rows)."""
        groups: dict[int, list[str]] = {}
        for record_id, person in zip(
            self.columns["id"].tolist(), self.truth.tolist(), strict=True
        ):
            groups.setdefault(person, []).append(record_id)
        return sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # transpose two letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice("aeioulnrst") + word[i + 1 :]  # replace a letter


def generate_duplicates(
    n: int, *, duplicate_rate: float = 0.05, seed: int = 0
) -> GeneratedContacts:
    """``n`` contacts of which about ``duplicate_rate`` are extra rows for a person
    already present, changed the way duplicates arise: a nickname (Bob for Robert), a
    typo, first and last name swapped, the phone written another way or left out, the
    email in capitals, replaced by a personal address or left out, the name case changed.
    Every duplicate keeps at least one trace a careful person would match on.

    >>> data = generate_duplicates(1_000, seed=1)
    >>> len(data), len(data.true_clusters()) > 30
    (1000, True)
    """
    rng = random.Random(seed)
    nicknames: dict[str, list[str]] = {}
    for nick, canonical in _nicknames().items():
        if nick != canonical:
            nicknames.setdefault(canonical, []).append(nick)
    n_dupes = round(n * duplicate_rate)
    n_people = n - n_dupes
    n_accounts = max(1, n_people // 20)
    domains = [
        f"{rng.choice(_WORDS)}{rng.choice(_KINDS)}{k}.{rng.choice(_TLDS)}"
        for k in range(n_accounts)
    ]
    rows: list[tuple[str, str, str, str, str]] = []
    truth: list[int] = []
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    digits_of: list[str] = []
    for person in range(n_people):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        at = rng.randrange(n_accounts)
        email = f"{first}.{last}@{domains[at]}"
        while email in used_emails:
            email = f"{first}.{last}{rng.randrange(10, 99)}@{domains[at]}"
        used_emails.add(email)
        digits = f"{rng.randrange(200, 999)}{rng.randrange(0, 10**7):07d}"
        while digits in used_phones:
            digits = f"{rng.randrange(200, 999)}{rng.randrange(0, 10**7):07d}"
        used_phones.add(digits)
        digits_of.append(digits)
        phone = rng.choice(_PHONE_FORMATS).format(a=digits[:3], b=digits[3:6], c=digits[6:])
        if rng.random() < 0.15:
            phone = ""
        rows.append((first.title(), last.title(), email, phone, f"acc{at}"))
        truth.append(person)
    for _ in range(n_dupes):
        person = rng.randrange(n_people)
        first, last, email, phone, account = rows[person]
        digits = digits_of[person]
        changes = rng.sample(["name", "phone", "email"], rng.randint(1, 2))
        if "name" in changes:
            how = rng.choice(["nickname", "typo", "swap", "case"])
            if how == "nickname" and first.lower() in nicknames:
                first = rng.choice(nicknames[first.lower()]).title()
            elif how == "typo":
                last = _typo(last, rng)
            elif how == "swap":
                first, last = last, first
            else:
                first, last = first.upper(), last.lower()
        if "phone" in changes:
            phone = (
                ""
                if rng.random() < 0.3
                else rng.choice(_PHONE_FORMATS).format(a=digits[:3], b=digits[3:6], c=digits[6:])
            )
        if "email" in changes:
            pick = rng.random()
            if pick < 0.4:
                email = email.upper()
            elif pick < 0.8:
                local = email.split("@", 1)[0]
                email = f"{local}{rng.randrange(1, 99)}@{rng.choice(_FREE)}"
            else:
                email = ""
        rows.append((first, last, email, phone, account))
        truth.append(person)
    order = list(range(len(rows)))
    rng.shuffle(order)
    columns = {
        "id": np.array([f"c{k}" for k in range(len(rows))], dtype=str),
        "first_name": np.array([rows[i][0] for i in order], dtype=str),
        "last_name": np.array([rows[i][1] for i in order], dtype=str),
        "email": np.array([rows[i][2] for i in order], dtype=str),
        "phone": np.array([rows[i][3] for i in order], dtype=str),
        "account_id": np.array([rows[i][4] for i in order], dtype=str),
    }
    return GeneratedContacts(
        columns=columns, truth=np.array([truth[i] for i in order], dtype=np.int64)
    )


def _pairs_within(labels: Array) -> int:
    _, counts = np.unique(labels, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def pair_quality(
    ids: Sequence[str] | Array, truth: Array, clusters: Iterable[Sequence[str]]
) -> tuple[float, float]:
    """``(precision, recall)`` of ``clusters`` over pairs of rows: a pair is predicted
    when both rows share a cluster, true when they share a ``truth`` label.

    >>> pair_quality(["a", "b", "c"], np.array([1, 1, 2]), [("a", "b")])
    (1.0, 1.0)
    >>> pair_quality(["a", "b", "c"], np.array([1, 1, 2]), [("a", "b", "c")])
    (0.3333333333333333, 1.0)
    """
    position = {str(record_id): k for k, record_id in enumerate(np.asarray(ids).tolist())}
    predicted = np.arange(len(position), dtype=np.int64) + int(truth.max(initial=0)) + 1
    for label, cluster in enumerate(clusters):
        for record_id in cluster:
            predicted[position[record_id]] = -1 - label
    both = predicted * (int(truth.max(initial=0)) + 2) + truth  # one label per (cluster, truth)
    hits = _pairs_within(both)
    found = _pairs_within(predicted)
    real = _pairs_within(truth)
    return (hits / found if found else 1.0, hits / real if real else 1.0)
