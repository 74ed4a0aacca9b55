"""Input texts of the test fixtures (shared by every fixture model)."""

# The example batch of the ListConRanker model card.
MODEL_CARD_BATCH = [
    [
        "皮蛋是寒性的食物吗",
        "营养医师介绍皮蛋是属于凉性的食物,中医认为皮蛋可治眼疼、牙疼、高血压、耳鸣眩晕等疾病。体虚者要少吃。",
        "皮蛋这种食品是在中国地域才常见的传统食品,它的生长汗青也是非常的悠长。",
        "喜欢皮蛋的人会觉得皮蛋是最美味的食物,不喜欢皮蛋的人则觉得皮蛋是黑暗料理,尤其很多外国朋友都不理解我们吃皮蛋的习惯",
    ],
    [
        "月有阴晴圆缺的意义",
        "形容的是月所有的状态,晴朗明媚,阴沉混沌,有月圆时,但多数时总是有缺陷。",
        "人有悲欢离合,月有阴晴圆缺这句话意思是人有悲欢离合的变迁,月有阴晴圆缺的转换。",
        "既然是诗歌,又哪里会有真正含义呢? 大概可以说:人生有太多坎坷,苦难,从容坦荡面对就好。",
        "一零七六年苏轼贬官密州,时年四十一岁的他政治上很不得志,时值中秋佳节,非常想念自己的弟弟子由内心颇感忧郁,情绪低沉,有感而发写了这首词。",
    ],
]

ZH_SLEEP = [
    "如何提高睡眠质量",
    "每天保持规律的作息时间,睡前一小时不要使用手机和电脑。",
    "睡前喝一杯温牛奶有助于放松身心,更容易入睡。",
    "适量的运动可以改善睡眠,但是不要在睡觉前剧烈运动。",
    "咖啡因会影响睡眠,下午以后尽量少喝咖啡和浓茶。",
    "北京的秋天天气晴朗,是旅游的好季节。",
]

ZH_TRAVEL = [
    "北京有哪些著名的景点",
    "故宫是明清两代的皇家宫殿,位于北京中轴线的中心。",
    "长城是中国古代的军事防御工程,八达岭长城最为有名。",
    "颐和园是清朝的皇家园林,以昆明湖和万寿山为基础。",
    "上海的外滩有很多历史建筑,夜景非常漂亮。",
    "天坛是明清两代皇帝祭天祈谷的地方。",
    "学习编程需要多动手写代码,多读优秀的开源项目。",
]

EN_FRANCE = [
    "what is the capital of france",
    "Paris is the capital and most populous city of France.",
    "The Eiffel Tower was completed in 1889 for the World's Fair.",
    "Berlin is the capital of Germany and its largest city.",
    "Lyon is known for its cuisine and gastronomy, and for its historical landmarks.",
]

EN_VACCINE = [
    "How do vaccines work?",
    "Vaccines train the immune system to recognize a pathogen without causing the disease.",
    "A vaccine usually contains a weakened or inactivated form of a virus, or one of its proteins.",
    "After vaccination, memory cells remain in the body and respond quickly to a later infection.",
    "The stock market closed higher today after a strong quarter for technology companies.",
    "Some vaccines require a booster dose several years later to keep the protection strong.",
    "Regular exercise and a balanced diet help keep the immune system healthy.",
    "mRNA vaccines give cells the instructions to make a harmless piece of the spike protein.",
]

# Awkward texts: empty, punctuation, digits, accents, mixed scripts, white space and control
# characters (tab, newline, no-break space, zero-width space).
EDGE_QUERY = "Café 咖啡 price in 2024?"
EDGE_PASSAGES = [
    "",
    "!!! ??? ... ,,, ;;; --- ((( ))) [[[ ]]] \"quoted\" 'single' @#$%^&*~",
    "3.14159 2718 1,000,000 2024-01-01 42% 007 1e10 0x1F",
    "Crème brûlée, café au lait, naïve résumé, Zürich, São Paulo, Ångström, Œuvre, ÉCOLE",
    "我今天在Starbucks买了一杯latte,花了35元, très cher! 明天去Café Zürich看看。",
    "tab\tseparated\nnew line\u00a0no-break\u200bzero width   multiple   spaces",
    "咖啡的价格在2024年上涨了大约15%,一杯拿铁要三十元。",
    "UPPER CASE TEXT and MiXeD CaSe WoRdS",
    "Straße groß, déjà vu, smörgåsbord, piñata, façade, coöperate",
    "，。！？【】《》“”‘’：；——……全角标点符号",
]

DUPLICATES_LIST = [
    "哪种水果含有丰富的维生素C",
    "猕猴桃含有丰富的维生素C,被称为水果之王。",
    "Oranges and lemons are rich in vitamin C.",
    "猕猴桃含有丰富的维生素C,被称为水果之王。",
    "苹果含有膳食纤维,可以促进消化。",
    "猕猴桃含有丰富的维生素C,被称为水果之王。",
    "Oranges and lemons are rich in vitamin C.",
    "",
    "",
]

SHORT_LISTS = [
    ["什么是机器学习", "机器学习是人工智能的一个分支,让计算机从数据中学习规律。"],
    [
        "best way to learn a new language",
        "Practice speaking every day with native speakers.",
        "Reading books and watching films in the language builds vocabulary.",
    ],
    [
        "Rust和Python哪个更适合写命令行工具",
        "Rust编译成单个可执行文件,启动快,适合发布命令行工具。",
        "Python写起来快,但是发布时需要用户安装解释器。",
        "Go也常用于写命令行工具,交叉编译很方便。",
    ],
]

LONG_ZH = (
    "人工智能是计算机科学的一个分支,它企图了解智能的实质,并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"
    "该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。"
    "人工智能从诞生以来,理论和技术日益成熟,应用领域也不断扩大,可以设想,未来人工智能带来的科技产品,将会是人类智慧的容器。"
    "人工智能可以对人的意识、思维的信息过程进行模拟。人工智能不是人的智能,但能像人那样思考,也可能超过人的智能。"
) * 4

LONG_EN = " ".join(
    [
        "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg",
        "combined movable metal type, oil-based ink and a wooden press adapted from wine making.",
        "Before that, books were copied by hand, which made them rare and expensive.",
        "Within a few decades printing shops had opened in more than two hundred cities across Europe,",
        "and millions of books had been produced. The spread of printed material changed science,",
        "religion and politics: scholars could share results quickly, and ideas travelled farther than ever.",
    ]
    * 7
)

# Fragments for generated lists (combined with a seeded RNG).
GEN_QUERIES = {
    "en": "how to train for a marathon",
    "zh": "马拉松训练应该注意什么",
    "mixed": "best running shoes 跑鞋推荐",
}

GEN_EN_FRAGMENTS = [
    "Build your weekly mileage slowly, by about ten percent at a time.",
    "A long run every weekend teaches the body to burn fat efficiently.",
    "Easy runs should feel conversational; most training is done at low intensity.",
    "Interval sessions on a track improve speed and running economy.",
    "Rest days matter as much as hard workouts because muscles repair while resting.",
    "Practice drinking water and taking energy gels during long training runs.",
    "New shoes should be broken in for several weeks before race day.",
    "Strength training for the hips and core helps prevent common injuries.",
    "A taper of two or three weeks lets the legs recover before the race.",
    "Sleep at least eight hours when the training load is high.",
    "The stock exchange opened lower after the central bank raised interest rates.",
    "Bake the bread at two hundred degrees for forty minutes until golden.",
    "The museum exhibition shows paintings from the early twentieth century.",
    "Tomatoes grow best in full sun with regular watering.",
    "Carbohydrate loading in the final days fills the glycogen stores.",
    "Pacing evenly is better than starting too fast and slowing down later.",
    "Heart rate zones help to keep easy days easy and hard days hard.",
    "Hills build leg strength and prepare runners for hilly courses.",
    "Stretching after a run can reduce stiffness the next morning.",
    "A training plan usually lasts between sixteen and twenty weeks.",
    "Cross training such as cycling or swimming adds fitness with less impact.",
    "Cold weather running requires layers that can be removed as you warm up.",
    "The new smartphone has a larger screen and a faster processor.",
    "Electrolytes lost through sweat should be replaced on hot days.",
    "Recovery runs are short and very slow, the day after a hard effort.",
    "Many first-time runners walk during the race, which is perfectly fine.",
    "Track your progress with a simple log of distance, time and how you felt.",
    "Blisters can be prevented with good socks and well-fitting shoes.",
    "The city marathon closes the roads for most of Sunday morning.",
    "Our team won the football match three to one last night.",
    "Tempo runs at a comfortably hard pace raise the lactate threshold.",
    "Eat a familiar breakfast two or three hours before the start.",
    "A sports watch with GPS measures pace, distance and cadence.",
    "The recipe calls for two eggs, flour, sugar and a pinch of salt.",
    "Listen to your body and skip a workout if something hurts.",
    "Running with a group keeps motivation high through the winter.",
    "Altitude training increases the number of red blood cells.",
    "Foam rolling loosens tight calves and hamstrings.",
    "Volcanoes form where tectonic plates pull apart or collide.",
    "Set a realistic goal time based on a recent half marathon.",
]

GEN_ZH_FRAGMENTS = [
    "跑量要循序渐进,每周增加不超过百分之十。",
    "长距离慢跑可以提高有氧耐力。",
    "比赛前三周开始减量,让身体充分恢复。",
    "合适的跑鞋能够减少受伤的风险。",
    "训练中要注意补充水分和电解质。",
    "力量训练可以增强核心和臀部肌肉。",
    "保证充足的睡眠有助于身体恢复。",
    "间歇跑能够提高速度和心肺能力。",
    "今天股市上涨,科技股表现突出。",
    "这道菜需要先把肉焯水,再用小火慢炖。",
    "赛前一天要多吃碳水化合物。",
    "跑步时保持均匀的配速最重要。",
    "天气炎热时要降低训练强度。",
    "博物馆新开了一个关于宋代瓷器的展览。",
    "坡道训练可以增强腿部力量。",
    "跑完步之后做拉伸可以缓解肌肉酸痛。",
    "第一次跑全马的人可以走跑结合。",
    "心率表可以帮助控制训练强度。",
    "这部手机的电池续航时间很长。",
    "比赛当天的早餐要吃熟悉的食物。",
]
