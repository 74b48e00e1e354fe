"""Value pools of the synthetic profiles, one per attribute type.

Perturbed answers draw wrong values from the same pool as the true one, so a model that prefers the
true answer must know the fact, not the type of answer. Every pool holds at least 12 values.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Adela", "Bruno", "Cyrus", "Dagny", "Elio", "Farah", "Goran", "Hana", "Ilias", "Jovana", "Kaito", "Leila",
    "Marek", "Nadia", "Oskar", "Priya", "Quentin", "Rhea", "Soren", "Tamsin", "Umar", "Vesna", "Wendel", "Ximena",
    "Yusuf", "Zelda", "Anouk", "Basil", "Cosima", "Dorian", "Esme", "Florin", "Greta", "Hugo", "Ines", "Jasper",
)
LAST_NAMES = (
    "Abernathy", "Brightwater", "Castellan", "Drummond", "Eskildsen", "Falkenrath", "Grisholm", "Halvorsen",
    "Ivanova", "Jaramillo", "Kovalenko", "Lindqvist", "Marchetti", "Nakashima", "Okonkwo", "Petrakis", "Quillfeather",
    "Rosenvald", "Szabo", "Thorncroft", "Underhill", "Valdivia", "Whitlock", "Yilmaz", "Zamora", "Achterberg",
    "Blackwood", "Cartwright", "Delacroix", "Ellingham",
)
CITIES = (
    "Lisbon", "Oslo", "Nairobi", "Kyoto", "Valparaiso", "Tbilisi", "Quebec City", "Adelaide", "Krakow", "Marrakesh",
    "Reykjavik", "Hanoi", "Cork", "Bergen", "Montevideo", "Tallinn", "Lagos", "Seville", "Manila", "Zurich",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
)
OCCUPATIONS = (
    "baker", "carpenter", "nurse", "pilot", "librarian", "fisherman", "architect", "veterinarian", "tailor",
    "astronomer", "plumber", "dentist", "photographer", "chemist", "gardener", "lawyer", "electrician", "florist",
)
GENRES = (
    "science fiction", "mystery", "historical fiction", "fantasy", "romance", "horror", "poetry", "satire",
    "travel writing", "crime thrillers", "magical realism", "children's literature", "biography", "war fiction",
)
AWARDS = (
    "Silver Quill Prize", "Golden Lantern Award", "Meridian Book Medal", "Northern Star Prize", "Amber Leaf Award",
    "Crescent Moon Prize", "Harbor Light Medal", "Iron Pen Award", "Blue Heron Prize", "Willow Crown Award",
    "Starling Medal", "Copper Key Prize",
)
TITLE_ADJECTIVES = (
    "Silent", "Crimson", "Forgotten", "Hollow", "Endless", "Broken", "Golden", "Wandering", "Hidden", "Frozen",
    "Burning", "Distant", "Quiet", "Shattered",
)
TITLE_NOUNS = (
    "Harbor", "Orchard", "Lantern", "Mirror", "Garden", "Tide", "Citadel", "Compass", "Meadow", "Archive", "Bridge",
    "Forest", "Chapel", "Horizon",
)
PUBLISHERS = (
    "Pinecone Press", "Larkspur Books", "Tidewater House", "Granite Publishing", "Owlfeather Editions",
    "Bluebell Press", "Marble Arch Books", "Saffron House", "Kestrel Publishing", "Driftwood Books",
    "Lighthouse Editions", "Cobblestone Press",
)
UNIVERSITIES = (
    "the University of Lisbon", "Trinity College Dublin", "the University of Nairobi", "Kyoto University",
    "the University of Oslo", "McGill University", "the University of Melbourne", "Jagiellonian University",
    "the University of Cape Town", "Uppsala University", "the University of Chile", "Seoul National University",
)
SUBJECTS = (
    "philosophy", "marine biology", "economics", "art history", "mathematics", "linguistics", "medicine",
    "anthropology", "astronomy", "music", "law", "geology", "psychology", "engineering",
)
LANGUAGES = (
    "English", "Portuguese", "Norwegian", "Swahili", "Japanese", "Spanish", "Georgian", "French", "Polish", "Arabic",
    "Icelandic", "Vietnamese", "Estonian", "Italian",
)
INFLUENCES = (
    "Jane Austen", "Leo Tolstoy", "Toni Morrison", "Gabriel Garcia Marquez", "Virginia Woolf", "Haruki Murakami",
    "Chinua Achebe", "Franz Kafka", "Ursula K. Le Guin", "Jorge Luis Borges", "Agatha Christie", "Mary Shelley",
)
HOBBIES = (
    "sailing", "chess", "beekeeping", "pottery", "birdwatching", "mountain climbing", "playing the cello",
    "gardening", "cycling", "astronomy", "fencing", "knitting", "photography", "rowing",
)
THEMES = (
    "memory and loss", "exile and belonging", "the sea", "family secrets", "friendship", "ambition",
    "time travel", "grief", "justice", "identity", "nature", "revolution", "childhood", "loneliness",
)
NUMBER_WORDS = (
    "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fourteen", "sixteen",
    "eighteen", "twenty",
)
WRITING_TIMES = (
    "before sunrise", "late at night", "in the early afternoon", "on weekend mornings", "during long train rides",
    "in the quiet hours after midnight", "right after breakfast", "in the evening", "on rainy days",
    "during winter holidays", "at dawn", "at lunchtime",
)
