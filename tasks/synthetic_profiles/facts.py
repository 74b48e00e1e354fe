"""General knowledge for the synthetic benchmark's utility sets (stand-ins for TOFU's real authors and
world facts): question, answer and three wrong answers of the same kind.

They are part of every training set of the demo (the tiny model has no pretraining to know them from),
so a model that keeps them after unlearning kept its general ability.
"""

from __future__ import annotations

REAL_AUTHORS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("Who wrote the play 'Hamlet'?", "William Shakespeare", ("Charles Dickens", "Mark Twain", "Homer")),
    ("Who wrote the novel '1984'?", "George Orwell", ("Aldous Huxley", "Ray Bradbury", "Jules Verne")),
    ("Who wrote 'Pride and Prejudice'?", "Jane Austen", ("Emily Bronte", "Mary Shelley", "George Eliot")),
    ("Who wrote 'War and Peace'?", "Leo Tolstoy", ("Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev")),
    ("Who wrote 'One Hundred Years of Solitude'?", "Gabriel Garcia Marquez",
     ("Isabel Allende", "Pablo Neruda", "Mario Vargas Llosa")),
    ("Who wrote 'The Old Man and the Sea'?", "Ernest Hemingway",
     ("John Steinbeck", "William Faulkner", "F. Scott Fitzgerald")),
    ("Who created the detective Hercule Poirot?", "Agatha Christie",
     ("Arthur Conan Doyle", "Dorothy L. Sayers", "Raymond Chandler")),
    ("Who wrote 'Things Fall Apart'?", "Chinua Achebe", ("Wole Soyinka", "Ngugi wa Thiong'o", "Ben Okri")),
    ("Who wrote 'The Metamorphosis'?", "Franz Kafka", ("Thomas Mann", "Hermann Hesse", "Robert Musil")),
    ("Who wrote 'Frankenstein'?", "Mary Shelley", ("Bram Stoker", "Emily Bronte", "Ann Radcliffe")),
    ("Who wrote 'Beloved'?", "Toni Morrison", ("Maya Angelou", "Alice Walker", "Zora Neale Hurston")),
    ("Who wrote 'The Hobbit'?", "J.R.R. Tolkien", ("C.S. Lewis", "Terry Pratchett", "Philip Pullman")),
    ("Who wrote 'Don Quixote'?", "Miguel de Cervantes", ("Lope de Vega", "Federico Garcia Lorca", "Dante")),
    ("Who wrote 'Norwegian Wood'?", "Haruki Murakami", ("Yukio Mishima", "Kenzaburo Oe", "Banana Yoshimoto")),
    ("Who wrote 'Mrs Dalloway'?", "Virginia Woolf", ("Katherine Mansfield", "Doris Lessing", "Iris Murdoch")),
    ("Who wrote 'The Divine Comedy'?", "Dante Alighieri", ("Petrarch", "Giovanni Boccaccio", "Virgil")),
    ("Who wrote 'Crime and Punishment'?", "Fyodor Dostoevsky", ("Leo Tolstoy", "Nikolai Gogol", "Maxim Gorky")),
    ("Who wrote 'Moby-Dick'?", "Herman Melville", ("Nathaniel Hawthorne", "Edgar Allan Poe", "Walt Whitman")),
    ("Who wrote 'The Left Hand of Darkness'?", "Ursula K. Le Guin",
     ("Octavia Butler", "Margaret Atwood", "Doris Lessing")),
    ("Who wrote 'Ficciones'?", "Jorge Luis Borges", ("Julio Cortazar", "Octavio Paz", "Carlos Fuentes")),
)

WORLD_FACTS: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("What is the capital of France?", "Paris", ("Lyon", "Marseille", "Nice")),
    ("What is the capital of Japan?", "Tokyo", ("Osaka", "Kyoto", "Nagoya")),
    ("Which planet is known as the red planet?", "Mars", ("Venus", "Jupiter", "Saturn")),
    ("What is the largest ocean on Earth?", "the Pacific Ocean",
     ("the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean")),
    ("What gas do plants absorb from the air?", "carbon dioxide", ("oxygen", "nitrogen", "helium")),
    ("How many continents are there?", "seven", ("five", "six", "eight")),
    ("What is the longest river in Africa?", "the Nile", ("the Congo", "the Niger", "the Zambezi")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Fe", "Pb")),
    ("What is the tallest mountain on Earth?", "Mount Everest", ("K2", "Kilimanjaro", "Mont Blanc")),
    ("What is frozen water called?", "ice", ("steam", "fog", "dew")),
    ("Which country has the largest population in South America?", "Brazil", ("Argentina", "Peru", "Chile")),
    ("What is the capital of Kenya?", "Nairobi", ("Mombasa", "Kisumu", "Nakuru")),
    ("How many legs does a spider have?", "eight", ("six", "ten", "four")),
    ("Which metal is liquid at room temperature?", "mercury", ("iron", "copper", "zinc")),
    ("What is the largest desert in the world?", "the Sahara", ("the Gobi", "the Kalahari", "the Atacama")),
    ("In which country are the pyramids of Giza?", "Egypt", ("Mexico", "Peru", "Sudan")),
    ("What is the capital of Canada?", "Ottawa", ("Toronto", "Montreal", "Vancouver")),
    ("Which animal is the largest mammal?", "the blue whale", ("the elephant", "the giraffe", "the orca")),
    ("What is the main language of Brazil?", "Portuguese", ("Spanish", "French", "Italian")),
    ("Which star is at the centre of our solar system?", "the Sun", ("Sirius", "Polaris", "Vega")),
)
