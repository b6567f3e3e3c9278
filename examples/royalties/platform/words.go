package platform

// Word lists for titles, artists and holders. Some words carry accents or
// are not in Latin script, so that a catalog search has to fold case and
// diacritics, and match more than ASCII.

var titleAdjectives = []string{
	"Golden", "Electric", "Broken", "Midnight", "Silent", "Wild", "Blue",
	"Lonely", "Crazy", "Sweet", "Naïve", "Bittersweet", "Velvet", "Crystal",
	"Forgotten", "Última", "Schön", "Doux", "Neon", "Endless", "Fading",
	"Brave", "Hollow", "Süß",
}

var titleNouns = []string{
	"Heart", "Night", "River", "Café", "Fiesta", "Mañana", "Sommer",
	"Nuit", "Lumière", "Saudade", "Coração", "Straße", "Fjord", "Sky",
	"Fire", "Echo", "Dream", "Garden", "Ocean", "Motel", "Señorita",
	"Déjà Vu", "Crème Brûlée", "Piñata", "Smörgåsbord", "Ångström",
	"Rendezvous", "Mirror", "Highway", "Paradise", "Résumé", "Jalapeño",
	"Überall", "Zoë", "Daydream", "Thunder", "Moonlight", "Horizon",
	"東京", "Москва",
}

var titlePlaces = []string{
	"Zürich", "São Paulo", "Malmö", "Kraków", "Reykjavík", "Montréal",
	"Bogotá", "Tōkyō", "Berlin", "Lagos", "Québec", "Curaçao",
}

var titleMixes = []string{
	"Remix", "Acoustic", "Live", "Radio Edit", "Demo", "Versión Española",
	"Extended Mix", "Remastered",
}

var firstNames = []string{
	"Zoë", "Renée", "José", "Björn", "Anaïs", "Chloé", "Søren", "Łukasz",
	"Inês", "Maëlle", "Jürgen", "Noémie", "Ramón", "Siân", "Dmitri",
	"Aoife", "Mateo", "Lucía", "Kwame", "Yūki", "Ava", "Liam", "Nora",
	"Omar", "Priya", "Ezra", "Mila", "Felix", "Hélène", "Thiago",
}

var lastNames = []string{
	"Müller", "Núñez", "Ødegaard", "Yılmaz", "Dvořák", "García",
	"Kowalski", "Lefèvre", "Brontë", "Sørensen", "O'Brien", "Nakamura",
	"Silva", "Schröder", "Åberg", "Papadopoulos", "Adeyemi", "Costa",
	"Novák", "Ferreira", "Jansen", "Okafor", "Moreau", "Quintero",
}

var bandNouns = []string{
	"Collective", "Orchestra", "Quartet", "Sound System", "Ensemble",
	"Brass Band", "Trio", "Crew",
}

// Artists in other scripts, added to the pool as they are.
var otherScriptArtists = []string{"Мария Иванова", "宇多田ヒカル", "Σταύρος Ξαρχάκος"}

var holderWords = []string{
	"aurora", "nordlys", "cafe", "fjord", "sirocco", "meridian", "lumiere",
	"saudade", "halcyon", "zenith", "solstice", "mistral", "borealis",
	"cielo", "kobo", "tundra", "ember", "harbor", "odeon", "quasar",
}

var holderSuffixes = []string{
	"music", "publishing", "records", "songs", "rights", "editions",
	"musikverlag", "ediciones",
}

var isrcRegistrants = []string{"RAW", "K7R", "Z3N", "MUS"}

// Rates: what each platform pays per play in micro-units, before the
// territory's factor.
var platformRates = []int64{4000, 3500, 5200, 2800, 4500, 3900}

// How much each platform is used, in percent of the first.
var platformShares = []int64{100, 60, 35, 25, 20, 15}

// Each territory's rate factor in per mille, and its usage in percent, as
// TerritoryNames.
var (
	territoryRateFactors = []int64{1000, 920, 880, 350, 850, 950, 300, 900}
	territoryShares      = []int64{100, 35, 30, 45, 25, 30, 30, 12}
)

// How much more a new release is played in its first months, in percent.
var newReleaseBoost = []int64{250, 190, 154, 132, 119, 111}
